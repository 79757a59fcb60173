"""labyard/mlsteam.py: parsing, refusals with line numbers, grids, commands, job copies."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labyard.errors import InvalidInput
from labyard.mlsteam import (
    MAX_BYTES,
    MlsteamError,
    ParamDefinition,
    build_command,
    coerce_value,
    expand_grid,
    grid_size,
    parse_mlsteam,
    resolved_yaml,
)

REPO = Path(__file__).resolve().parents[2]
DEFS = "command: x\nparams: {a: 1}\nparams_definition:\n"  # entries start on line 4
DESIGN_EXAMPLE = """\
command: python train.py
params:                       # a list means several values
  network: [lenet]
  aug_list: [none]
  num_epoch: 10
  batch_size: [32, 64]
  memory_saving_method: [none]
  small_chunk: 1
params_definition:
  network: {options: [lenet, resnet50, vgg16]}
  aug_list: {options: [none, color_distortion, flip_random, both]}
  memory_saving_method: {options: [none, recomputing]}
image: labyard/runner:latest
"""


def test_design_example_parses_into_a_grid_of_two_jobs() -> None:
    config = parse_mlsteam(DESIGN_EXAMPLE)
    assert config.command == "python train.py" and config.image == "labyard/runner:latest"
    assert config.params["batch_size"] == [32, 64] and config.params["num_epoch"] == [10]
    assert "batch_size" in config.multi and "num_epoch" not in config.multi
    assert config.definitions["network"].options == ("lenet", "resnet50", "vgg16")
    assert grid_size(config.grid()) == 2
    combos = expand_grid(config.grid())
    assert [c["batch_size"] for c in combos] == [32, 64]
    argv = build_command(config, combos[1])
    assert argv[:2] == ["python", "train.py"]
    assert argv[argv.index("--batch_size") + 1] == "64"


def test_classification_template_parses() -> None:
    text = (REPO / "lab_templates" / "classification" / "mlsteam.yml").read_text()
    config = parse_mlsteam(text)
    assert grid_size(config.grid()) == 1


def test_job_copy_has_one_scalar_per_param() -> None:
    config = parse_mlsteam(DESIGN_EXAMPLE)
    copy = yaml.safe_load(resolved_yaml(config, expand_grid(config.grid())[1]))
    assert copy["params"]["batch_size"] == 64 and copy["params"]["network"] == "lenet"
    assert copy["params_definition"] == yaml.safe_load(DESIGN_EXAMPLE)["params_definition"]


def test_params_as_flags_false_and_early_form() -> None:
    config = parse_mlsteam(
        "command: ./run.sh 'a b'\nparams_as_flags: false\nparams: {x: 1}\nenv: my/img:1\n"
        "gpu: 2\ninput:\n  - {source: mnist, dest: /data}\n"
    )
    assert build_command(config, {"x": 1}) == ["./run.sh", "a b"]
    assert config.image == "my/img:1" and config.gpu == 2
    assert config.inputs[0].source == "mnist" and config.inputs[0].dest == "/data"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("command: x\ncomand: y\n", 2, "unknown key 'comand'"),
        ("command: x\nparams_definition:\n  a: {option: [1]}\nparams: {a: 1}\n", 3, "'option'"),
        ("command: x\nparams: [1, 2\n", 3, "invalid YAML"),
        ("command: x\nparams:\n  a: &big [1]\n  b: *big\n", 3, "anchors and aliases"),
        ("command: x\nparams:\n  'bad name': 1\n", 3, "not a valid flag name"),
        ("command: x\nparams:\n  a: []\n", 3, "empty list"),
        ("command: x\nparams:\n  a: {b: 1}\n", 3, "not a string, number or boolean"),
        ("command: x\ncommand: y\n", 2, "duplicate key"),
        (DEFS + "  a: {type: complex}\n", 4, "params_definition.a: type must be one of int"),
        (DEFS + "  a:\n    help: hi\n    options: []\n", 6, "options must be a non-empty list"),
        (DEFS + "  a:\n    options: 3\n", 5, "options must be a non-empty list"),
        (DEFS + "  a:\n    options: [{b: 1}]\n", 5, "an option of 'a': {'b': 1} is not"),
        (DEFS + "  a:\n    min: x\n", 5, "params_definition.a: min must be a finite number"),
        (DEFS + "  a:\n    help: 5\n", 5, "help must be a string"),
        (DEFS + "  a: {}\n  b: {options: [1]}\n", 5, "names 'b', which is not in params"),
        # an int past the float range is refused, not a crash (OverflowError)
        (
            f"command: x\nparams:\n  a: {'9' * 400}\nparams_definition: {{a: {{type: float}}}}\n",
            3,
            "is not a valid float",
        ),
    ],
)
def test_refusals_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(MlsteamError, match=message) as info:
        parse_mlsteam(text)
    assert info.value.line == line
    assert f"line {line}" in info.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("params: {a: 1}\n", "`command`"),
        ('command: "x \'y"\n', "cannot be split"),
        ("command: x\nparams: {a: 1}\nparams_definition: {b: {options: [1]}}\n", "not in params"),
        ("command: x\nparams: {a: 9}\nparams_definition: {a: {options: [1, 2]}}\n", "not one of"),
        ("command: x\nparams: {a: 9}\nparams_definition: {a: {type: int, max: 5}}\n", "maximum"),
        ("command: x\nparams: {a: 1}\nparams_definition: {a: {type: complex}}\n", "type must"),
        ("command: x\nimage: 'a b'\n", "valid image"),
        ("command: x\nparams_as_flags: maybe\n", "true or false"),
        ("command: x\ngpu: -1\n", "whole number"),
    ],
)
def test_invalid_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_mlsteam(text)


def test_size_limit_and_alias_bomb() -> None:
    with pytest.raises(MlsteamError, match="larger than"):
        parse_mlsteam("command: x\n# " + "a" * MAX_BYTES)
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n"
    with pytest.raises(MlsteamError, match="anchors"):
        parse_mlsteam(bomb)


@pytest.mark.parametrize(
    ("definition", "raw", "expected"),
    [
        (ParamDefinition(type="int", min=1), "32", 32),
        (ParamDefinition(type="float"), " 0.5 ", 0.5),
        (ParamDefinition(type="bool"), "yes", True),
        (ParamDefinition(type="str"), 5, "5"),
        (ParamDefinition(options=(32, 64)), "64", "64"),
        (None, "anything", "anything"),
    ],
)
def test_coerce_value(definition: ParamDefinition | None, raw: object, expected: object) -> None:
    assert coerce_value(definition, raw, name="p") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("definition", "raw"),
    [
        (ParamDefinition(type="int"), "1.5"),
        (ParamDefinition(type="int"), True),
        (ParamDefinition(type="float"), "nan"),
        (ParamDefinition(type="bool"), "perhaps"),
        (ParamDefinition(type="int", min=1), "0"),
        (ParamDefinition(options=("a", "b")), "c"),
    ],
)
def test_coerce_value_refuses(definition: ParamDefinition, raw: object) -> None:
    with pytest.raises(InvalidInput):
        coerce_value(definition, raw, name="p")  # type: ignore[arg-type]


def test_expand_grid_is_order_stable() -> None:
    grid = {"a": [1, 2], "b": ["x", "y", "z"]}
    assert grid_size(grid) == 6
    assert expand_grid(grid)[:3] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}]
    assert grid_size({"a": [1], "b": []}) == 0 and expand_grid({"a": [1], "b": []}) == []


def test_dangerous_values_stay_single_arguments() -> None:
    config = parse_mlsteam("command: python t.py\nparams: {v: x}\n")
    for value in ("$(id)", "; rm -rf ~", "--privileged", "a b"):
        assert build_command(config, {"v": value})[-2:] == ["--v", value]


def test_options_are_suggestions_when_a_range_is_declared() -> None:
    ranged = ParamDefinition(options=(0.1, 0.01), type="float", min=0.0001, max=1.0)
    assert coerce_value(ranged, "0.0123", name="lr") == 0.0123  # a search's sampled value
    with pytest.raises(InvalidInput, match="above the maximum"):
        coerce_value(ranged, "2", name="lr")
    strict = ParamDefinition(options=(0.1, 0.01), type="float")
    with pytest.raises(InvalidInput, match="is not one of"):
        coerce_value(strict, "0.0123", name="lr")
