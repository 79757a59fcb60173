"""labyard/searchspec.py: the `search:` block of mlsteam.yml (refusals with lines), ranges in
params_definition, a form's settings and spaces over the file's, and what each algorithm needs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from labyard.errors import InvalidInput
from labyard.jobs import metrics
from labyard.mlsteam import MAX_BYTES, MlsteamError, parse_mlsteam, resolved_yaml
from labyard.searches.space import check_algorithm_fits, grid_size_of, search_space
from labyard.searchspec import (
    ALGORITHMS,
    METRIC_GROUPS,
    RESOURCES,
    ParamSpace,
    SearchSettings,
    search_settings,
)

REPO = Path(__file__).resolve().parents[2]
ISSUE_EXAMPLE = """\
command: python train.py
params:
  lr: 0.01
  batch_size: [32, 64, 128]
  network: lenet
  epochs: 10
search:
  algorithm: tpe          # grid | random | tpe | cmaes
  metric: Validation_acc  # any series the jobs print
  goal: maximize
  trials: 40
  parallel: 4
  early_stopping: asha    # none | asha | hyperband | median
  resource: epoch         # the x-axis the metric is reported over
  min_resource: 1
  reduction_factor: 3
params_definition:
  lr: {type: float, min: 0.0001, max: 0.1, log: true}
  batch_size: {options: [32, 64, 128]}
  epochs: {type: int, min: 1, max: 20, step: 2}
"""


def _file(search: str, extra: str = "") -> str:
    """A file whose `search:` block (indented by the caller) starts on line 3."""
    return "command: x\nparams: {lr: 0.1, n: [1, 2], s: a}\nsearch:\n" + search + extra


def test_issue_example_parses_with_its_settings_and_space() -> None:
    config = parse_mlsteam(ISSUE_EXAMPLE)
    assert config.search == SearchSettings(
        metric="Validation_acc", trials=40, parallel=4, early_stopping="asha"
    )
    assert config.definitions["lr"].log is True and config.definitions["epochs"].step == 2
    space = search_space(config)
    assert list(space) == ["lr", "batch_size", "network", "epochs"]
    assert space["lr"] == ParamSpace("float", 0.0001, 0.1, log=True)
    assert space["batch_size"] == ParamSpace("categorical", choices=(32, 64, 128))
    assert space["network"] == ParamSpace("fixed", choices=("lenet",))
    assert space["epochs"] == ParamSpace("int", 1, 20, step=2)
    check_algorithm_fits(config.search, space)
    assert grid_size_of(space) is None


def test_defaults_and_no_block() -> None:
    config = parse_mlsteam(_file("  metric: Train_loss\n"))
    assert config.search == SearchSettings(metric="Train_loss")
    assert (config.search.algorithm, config.search.trials, config.search.parallel) == (
        "tpe",
        20,
        1,
    )
    assert parse_mlsteam("command: x\nparams: {a: 1}\n").search is None


def test_every_template_still_parses() -> None:
    paths = sorted((REPO / "lab_templates").glob("*/mlsteam.yml"))
    assert paths
    for path in paths:
        parse_mlsteam(path.read_text())


def test_job_copy_keeps_the_block_and_parses_again() -> None:
    config = parse_mlsteam(ISSUE_EXAMPLE)
    values: dict[str, Any] = {"lr": 0.003, "batch_size": 64, "network": "lenet", "epochs": 5}
    again = parse_mlsteam(resolved_yaml(config, values))
    assert again.search == config.search and again.params["lr"] == [0.003]


def test_metric_names_follow_the_job_metric_lines() -> None:
    assert set(METRIC_GROUPS) == metrics.GROUPS and RESOURCES == metrics.X_AXES
    points = metrics.parse_metric_line("Validation epoch=3 acc=0.9 top-5=0.99")
    for point in points:
        assert parse_mlsteam(_file(f"  metric: {point.name}\n")).search is not None


HUGE = "9" * 400


@pytest.mark.parametrize(
    ("block", "line", "message"),
    [
        ("  metric: Validation_acc\n  algo: tpe\n", 5, "unknown key 'algo' in search"),
        ("  metric: Validation_acc\n  metric: Train_acc\n", 5, "duplicate key 'metric'"),
        ("  3\n", 4, "search must be a mapping"),
        ("  [tpe]\n", 4, "search must be a mapping"),
        ("  algorithm: tpe\n  trials: 4\n", 4, "search.metric is required"),
        ("  metric: acc\n", 4, "search.metric must name a series .* not 'acc'"),
        ("  metric: Validation_epoch\n", 4, "search.metric must name a series"),
        ("  metric: 5\n", 4, "search.metric must name a series"),
        ("  metric: [Validation_acc]\n", 4, "search.metric must name a series"),
        ("  metric: 'Validation_acc; rm -rf ~'\n", 4, "search.metric must name"),
        ("  metric: Validation_acc\n  algorithm: bayes\n", 5, "one of grid, random, tpe, cmaes"),
        ("  metric: Validation_acc\n  algorithm: TPE\n", 5, "search.algorithm must be one of"),
        ("  metric: Validation_acc\n  algorithm:\n    a: 1\n", 5, "search.algorithm must be"),
        ("  metric: Validation_acc\n  goal: max\n", 5, "search.goal must be one of maximize"),
        ("  metric: Validation_acc\n  trials: 0\n", 5, "trials must be a whole number from 1"),
        ("  metric: Validation_acc\n  trials: 1001\n", 5, "from 1 to 1000, not 1001"),
        ("  metric: Validation_acc\n  trials: -5\n", 5, "search.trials must be"),
        ("  metric: Validation_acc\n  trials: true\n", 5, "not True"),
        ("  metric: Validation_acc\n  trials: '40'\n", 5, "not '40'"),
        ("  metric: Validation_acc\n  trials: 40.0\n", 5, "not 40.0"),
        ("  metric: Validation_acc\n  trials: .nan\n", 5, "not nan"),
        ("  metric: Validation_acc\n  trials: .inf\n", 5, "not inf"),
        ("  metric: Validation_acc\n  trials: null\n", 5, "not None"),
        ("  metric: Validation_acc\n  trials: [40]\n", 5, "not \\[40\\]"),
        (f"  metric: Validation_acc\n  trials: {HUGE}\n", 5, "not a number that large"),
        ("  metric: Validation_acc\n  trials: 4\n  parallel: 5\n", 6, "parallel must not exc"),
        ("  metric: Validation_acc\n  parallel: 0\n", 5, "search.parallel must be"),
        ("  metric: Validation_acc\n  early_stopping: sha\n", 5, "asha, hyperband, median"),
        ("  metric: Validation_acc\n  early_stopping: false\n", 5, "not False"),
        ("  metric: Validation_acc\n  resource: batch\n", 5, "one of step, iter, epoch"),
        ("  metric: Validation_acc\n  min_resource: 0\n", 5, "min_resource must be a whole"),
        (
            "  metric: Validation_acc\n  min_resource: 5\n  max_resource: 3\n",
            6,
            "search.max_resource must be above min_resource \\(5\\), not 3",
        ),
        ("  metric: Validation_acc\n  max_resource: 10000000000\n", 5, "to 1000000000"),
        ("  metric: Validation_acc\n  reduction_factor: 1\n", 5, "from 2 to 100, not 1"),
        ("  metric: Validation_acc\n  reduction_factor: 101\n", 5, "reduction_factor must"),
        ("  metric: Validation_acc\n  seed: -1\n", 5, "search.seed must be a whole number"),
        ("  metric: Validation_acc\n  seed: 2147483648\n", 5, "from 0 to 2147483647"),
        ("  metric: Validation_acc\n  seed: 1.5\n", 5, "search.seed must be"),
        ("  metric: Validation_acc\n  seed: {a: 1}\n", 5, "search.seed must be"),
    ],
)
def test_search_block_refusals_name_the_line(block: str, line: int, message: str) -> None:
    with pytest.raises(MlsteamError, match=message) as info:
        parse_mlsteam(_file(block))
    assert info.value.line == line and f"line {line}" in info.value.message


def test_optional_settings_may_be_null() -> None:
    config = parse_mlsteam(_file("  metric: Test_f1\n  seed: null\n  max_resource: ~\n"))
    assert config.search is not None and config.search.seed is None


def test_ten_thousand_keys() -> None:
    keys = "".join(f"  k{i}: 1\n" for i in range(10_000))
    with pytest.raises(MlsteamError, match="unknown key 'k0' in search") as info:
        parse_mlsteam(_file("  metric: Validation_acc\n" + keys))
    assert info.value.line == 5
    entries = "".join(f"  p{i}: {{type: int}}\n" for i in range(10_000))
    text = "command: x\nparams: {a: 1}\nparams_definition:\n" + entries
    with pytest.raises(MlsteamError, match="names 'p0', which is not in params") as info:
        parse_mlsteam(text)
    assert info.value.line == 4
    padded = _file("  metric: Validation_acc\n" + "  # pad\n" * (MAX_BYTES // 8))
    with pytest.raises(MlsteamError, match="larger than"):
        parse_mlsteam(padded)


DEFS = "command: x\nparams: {a: 1, s: x}\nparams_definition:\n"


@pytest.mark.parametrize(
    ("entry", "line", "message"),
    [
        ("  s: {type: str, log: true}\n", 4, "s: log: true needs type float or int"),
        ("  a: {type: float, log: true}\n", 4, "log: true needs min above 0"),
        ("  a:\n    type: float\n    min: 0\n    max: 1\n    log: true\n", 8, "min above 0"),
        ("  a:\n    type: int\n    log: 'true'\n", 6, "a: log must be true or false"),
        ("  a:\n    type: int\n    log: 1\n", 6, "log must be true or false"),
        ("  a:\n    min: 5\n    max: 1\n", 6, "min \\(5\\) must be below max \\(1\\)"),
        ("  a:\n    min: 1\n    max: 1\n", 6, "must be below max"),
        ("  a:\n    min: .nan\n", 5, "a: min must be a finite number"),
        ("  a:\n    max: .inf\n", 5, "max must be a finite number"),
        ("  a:\n    min: -.inf\n", 5, "min must be a finite number"),
        ("  a:\n    min: '1'\n", 5, "min must be a finite number"),
        ("  a:\n    min: true\n", 5, "min must be a finite number"),
        (f"  a:\n    min: {HUGE}\n", 5, "min must be a finite number"),
        ("  a:\n    max: [1]\n", 5, "max must be a finite number"),
        ("  a:\n    min: -1.0e+308\n    max: 1.0e+308\n", 6, "too wide"),
        ("  a: {type: int, min: 0, max: 9, step: 0}\n", 4, "step \\(0\\) must be above 0"),
        ("  a: {type: int, min: 0, max: 9, step: -2}\n", 4, "must be above 0"),
        ("  a: {type: int, min: 0, max: 9, step: 0.5}\n", 4, "of an int must be a whole"),
        ("  a: {type: float, min: 1, max: 9, step: .nan}\n", 4, "step must be a finite"),
        ("  a: {type: float, min: 1, max: 9, step: 1, log: true}\n", 4, "cannot be combined"),
        ("  a: {type: float, step: 1}\n", 4, "step needs type int or float, min and max"),
        ("  s: {type: str, min: 0, max: 1, step: 1}\n", 4, "step needs type int or float"),
        ("  a:\n    type: float\n    lg: true\n", 6, "unknown key 'lg'"),
    ],
)
def test_range_refusals_name_the_line(entry: str, line: int, message: str) -> None:
    with pytest.raises(MlsteamError, match=message) as info:
        parse_mlsteam(DEFS + entry)
    assert info.value.line == line


def test_options_and_a_range_together() -> None:
    config = parse_mlsteam(
        "command: x\nparams: {b: [32, 64]}\nparams_definition:\n"
        "  b: {type: int, options: [32, 64, 128], min: 16, max: 256, log: true}\n"
    )
    assert config.grid() == {"b": [32, 64]}
    assert search_space(config)["b"] == ParamSpace("int", 16, 256, log=True)
    assert search_space(config, {"b": [32, "128"]})["b"].choices == (32, 128)


def test_int_bounds_that_are_not_whole_round_inward() -> None:
    config = parse_mlsteam(DEFS + "  a: {type: int, min: 0.5, max: 10.5}\n")
    assert search_space(config)["a"] == ParamSpace("int", 1, 10)
    single = parse_mlsteam(DEFS + "  a: {type: int, min: 0.5, max: 1.5}\n")
    assert search_space(single)["a"] == ParamSpace("fixed", choices=(1,))


# --------------------------------------------------------------------------- settings


def test_form_settings_over_the_file() -> None:
    base = SearchSettings(metric="Validation_acc", trials=40, parallel=4, max_resource=10)
    got = search_settings(
        base, {"trials": " 50 ", "algorithm": " random ", "seed": "7", "max_resource": ""}
    )
    assert got == SearchSettings(
        metric="Validation_acc", algorithm="random", trials=50, parallel=4, seed=7
    )
    assert search_settings(base, {"trials": "", "metric": None}) == base  # empty keeps
    assert base.trials == 40
    fresh = search_settings(None, {"metric": "Train_loss", "goal": "minimize"})
    assert fresh == SearchSettings(metric="Train_loss", goal="minimize")
    data = json.loads(json.dumps(fresh.as_dict()))
    assert SearchSettings(**data) == fresh


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({}, "metric", "metric is required"),
        ({"metric": "acc"}, "metric", "must name a series"),
        ({"metric": {"a": 1}}, "metric", "must name a series"),
        ({"metric": "Validation_acc", "trials": "abc"}, "trials", "not 'abc'"),
        ({"metric": "Validation_acc", "trials": "1e3"}, "trials", "whole number"),
        ({"metric": "Validation_acc", "trials": "40.5"}, "trials", "whole number"),
        ({"metric": "Validation_acc", "trials": "-1"}, "trials", "from 1 to 1000"),
        ({"metric": "Validation_acc", "trials": "1001"}, "trials", "from 1 to 1000"),
        ({"metric": "Validation_acc", "trials": "9" * 5000}, "trials", "whole number"),
        ({"metric": "Validation_acc", "trials": 10**400}, "trials", "a number that large"),
        ({"metric": "Validation_acc", "trials": True}, "trials", "not True"),
        ({"metric": "Validation_acc", "trials": "true"}, "trials", "whole number"),
        ({"metric": "Validation_acc", "trials": math.nan}, "trials", "not nan"),
        ({"metric": "Validation_acc", "trials": [40]}, "trials", "whole number"),
        ({"metric": "Validation_acc", "parallel": "30"}, "parallel", "not exceed trials"),
        ({"metric": "Validation_acc", "algorithm": "bayes"}, "algorithm", "one of grid"),
        ({"metric": "Validation_acc", "goal": 1}, "goal", "maximize, minimize"),
        ({"metric": "Validation_acc", "reduction_factor": "1"}, "reduction_factor", "2 to"),
        ({"metric": "Validation_acc", "seed": "-1"}, "seed", "from 0"),
        (
            {"metric": "Validation_acc", "min_resource": 5, "max_resource": "5"},
            "max_resource",
            "above",
        ),
        ({"metric": "Validation_acc", "colour": "red"}, "colour", "not a search setting"),
    ],
)
def test_form_settings_refused(overrides: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        search_settings(None, overrides)
    assert info.value.field == field


def test_cross_checks_blame_the_field_the_form_changed() -> None:
    base = SearchSettings(metric="Validation_acc", trials=40, parallel=4, max_resource=10)
    with pytest.raises(InvalidInput, match="trials must not be below parallel") as info:
        search_settings(base, {"trials": "2"})
    assert info.value.field == "trials"
    with pytest.raises(InvalidInput, match="min_resource must be below max_resource") as info:
        search_settings(base, {"min_resource": 10})
    assert info.value.field == "min_resource"


# --------------------------------------------------------------------------- spaces

SPACE_FILE = """\
command: x
params:
  lr: 0.01
  bs: [32, 64]
  depth: [2, 4]
  net: [lenet, vgg]
  flag: [true, false]
  drop: 0.5
params_definition:
  net: {options: [lenet, vgg, resnet]}
  lr: {type: float, min: 0.0001, max: 0.5}
  bs: {type: int, options: [16, 32, 64, 128], min: 16, max: 128}
  flag: {type: bool}
"""


def test_overrides_from_a_form() -> None:
    config = parse_mlsteam(SPACE_FILE)
    space = search_space(
        config,
        {
            "lr": {"min": "0.001", "max": "0.05", "log": "on"},
            "bs": {"values": ["16", "128"]},
            "depth": "2, 8, 8",  # the grid's rule: text splits on commas
            "net": ["vgg"],
            "flag": "false",
            "drop": {"min": "0.1", "max": "0.6", "step": "0.1"},
        },
    )
    assert space["lr"] == ParamSpace("float", 0.001, 0.05, log=True)
    assert space["bs"] == ParamSpace("categorical", choices=(16, 128))
    assert space["depth"] == ParamSpace("categorical", choices=(2, 8))
    assert space["net"] == ParamSpace("fixed", choices=("vgg",))
    assert space["flag"] == ParamSpace("fixed", choices=(False,))
    assert space["drop"] == ParamSpace("float", 0.1, 0.6, step=0.1)
    ints = search_space(config, {"depth": {"min": 1, "max": "8", "step": 1}})["depth"]
    assert ints == ParamSpace("int", 1, 8, step=1) and isinstance(ints.low, int)
    assert search_space(config, {"depth": {"min": 1, "max": 8.5}})["depth"].kind == "float"


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        ("nope", [1], "mlsteam.yml has no param 'nope'"),
        ("net", {"min": 0, "max": 1}, "a range needs number values"),
        ("flag", {"min": 0, "max": 1}, "its type is bool"),
        ("lr", {"min": 0.1, "max": 0.01}, "must be below max"),
        ("lr", {"min": 0.01, "max": 0.01}, "must be below max"),
        ("lr", {"min": 0.00001, "max": 0.01}, "below the file's minimum 0.0001"),
        ("lr", {"min": 0.01, "max": 5}, "above the file's maximum 0.5"),
        ("drop", {"min": 0, "max": 1, "log": True}, "min above 0"),
        ("drop", {"min": -1, "max": 1, "log": "yes"}, "min above 0"),
        ("drop", {"min": 1, "max": 2, "log": "maybe"}, "not a valid bool"),
        ("drop", {"min": 1, "max": 2, "log": [True]}, "log must be true or false"),
        ("bs", {"min": 16.5, "max": 64}, "int range needs whole numbers"),
        ("bs", {"min": 16, "max": 64, "step": 1.5}, "of an int must be a whole number"),
        ("drop", {"min": "nan", "max": 1}, "min must be a finite number, not 'nan'"),
        ("drop", {"min": 0, "max": "inf"}, "max must be a finite number"),
        ("drop", {"min": 0, "max": 10**400}, "not a number that large"),
        ("drop", {"min": "-1e308", "max": "1e308"}, "too wide"),
        ("drop", {"min": True, "max": 1}, "min must be a finite number, not True"),
        ("drop", {"min": 0}, "max must be a finite number, not None"),
        ("drop", {"min": [0], "max": 1}, "min must be a finite number"),
        ("drop", {"min": 0, "max": 1, "step": "0"}, "step \\(0\\) must be above 0"),
        ("drop", {"min": 0.1, "max": 1, "step": -1}, "must be above 0"),
        ("drop", {"min": 0.1, "max": 1, "step": 0.1, "log": True}, "cannot be combined"),
        ("drop", {"min": 0, "max": 1, "lo": 3}, "'lo' is not a range key"),
        ("drop", {"a": {"b": 1}}, "'a' is not a range key"),
        ("drop", {"values": [0.1], "min": 0}, "values or a range"),
        ("drop", {"values": []}, "at least one value"),
        ("drop", [], "at least one value"),
        ("drop", "", "at least one value"),
        ("drop", [{"a": 1}], "is not a string, number or boolean"),
        ("drop", [None], "is not a string, number or boolean"),
        ("drop", None, "is not a string, number or boolean"),
        ("drop", [0.1] * 1001, "at most 1000 values"),
        ("drop", ["nan"], "not a valid float"),
        ("drop", [math.inf], "not a valid float"),
        ("net", ["lenet", "alexnet"], "not one of lenet, vgg, resnet"),
        ("bs", [32, 256], "above the maximum 128"),
        ("bs", ["99999999999999999999"], "above the maximum"),
        ("flag", ["perhaps"], "not a valid bool"),
        ("depth", [1.5], "not a valid int"),
    ],
)
def test_hostile_overrides_are_refused(name: str, override: Any, message: str) -> None:
    config = parse_mlsteam(SPACE_FILE)
    with pytest.raises(InvalidInput, match=message) as info:
        search_space(config, {name: override})
    assert info.value.field == name


@pytest.mark.parametrize(
    "space",
    [
        ParamSpace("float", 0.001, 0.1, log=True),
        ParamSpace("float", 0.0, 1.0, step=0.25),
        ParamSpace("int", 1, 9, step=2),
        ParamSpace("categorical", choices=(32, "a", 0.5, True)),
        ParamSpace("fixed", choices=("x",)),
    ],
)
def test_param_space_round_trips_through_json(space: ParamSpace) -> None:
    assert ParamSpace.from_dict(json.loads(json.dumps(space.as_dict()))) == space


def test_param_space_from_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown param space kind"):
        ParamSpace.from_dict({"kind": "normal"})


def test_what_each_algorithm_needs() -> None:
    config = parse_mlsteam(SPACE_FILE)
    choices = {"lr": [0.1, 0.01], "bs": [32, 64], "drop": [0.5]}
    by_choice = search_space(config, choices)
    assert grid_size_of(by_choice) == 2 * 2 * 2 * 2 * 2 * 1
    with_range = search_space(config)
    assert grid_size_of(with_range) is None
    grid = SearchSettings(metric="Validation_acc", algorithm="grid")
    check_algorithm_fits(grid, by_choice)
    with pytest.raises(InvalidInput, match="lr is a range") as info:
        check_algorithm_fits(grid, with_range)
    assert info.value.field == "lr"
    cmaes = SearchSettings(metric="Validation_acc", algorithm="cmaes")
    check_algorithm_fits(cmaes, with_range)
    with pytest.raises(InvalidInput, match="CMA-ES needs") as info:
        check_algorithm_fits(cmaes, by_choice)
    assert info.value.field == "algorithm"
    hyperband = SearchSettings(metric="Validation_acc", early_stopping="hyperband")
    check_algorithm_fits(hyperband, with_range)  # max_resource None: "auto"
    for algorithm in ALGORITHMS[1:]:
        check_algorithm_fits(SearchSettings(metric="Train_loss", algorithm=algorithm), with_range)
