"""`mlsteam.yml`: THE parser and validator of a lab's job description (MLSteam v3.4 format).

    config = parse_mlsteam(text)                 # LabConfig, or InvalidInput with a line
    grid = config.grid()                         # {param: [values]}
    for values in expand_grid(grid):             # one dict per combination, order-stable
        argv = build_command(config, values)     # command split like a shell, + --name value
        job_yml = resolved_yaml(config, values)  # the job's copy: one scalar per param

Every YAML a user writes is read by `labyard.yamlcheck.load_checked`, this file included.

Keys: `command`, `params` (a scalar is one value; a list is several, one job per
combination), `params_definition` (per param: `options`, and Labyard's `type`
(int|float|str|bool|weights), `min`, `max`, `log`, `step`, `help`), `image`, `params_as_flags`
(default true), Labyard's `search:` block (labyard.searchspec: how a search samples) and
`output_dataset:` block (labyard.outputspec: a folder of a succeeded job's output becomes a
dataset of the project).
The early MLSteam form is read and mapped: `env` (the image), `gpu` (a GPU count) and
`input: [{source, dest}]`. Unknown keys are refused with their line; so are YAML anchors
and aliases (no alias bombs), nesting past yamlcheck.MAX_DEPTH and files over MAX_BYTES.
"""

from __future__ import annotations

import itertools
import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from labyard.errors import InvalidInput
from labyard.outputspec import OUTPUT_DATASET_KEYS, OutputDatasetSpec, parse_output_block
from labyard.searchspec import (
    SEARCH_KEYS,
    SearchSettings,
    definition_problem,
    parse_search_block,
)
from labyard.yamlcheck import MAX_BYTES, YamlError, load_checked

CONFIG_FILE = "mlsteam.yml"
MAX_VALUES_PER_PARAM = 1000
PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
TOP_KEYS = frozenset(
    {"command", "params", "params_definition", "image", "params_as_flags", "search"}
    | {"output_dataset"}  # Labyard's extension (labyard.outputspec)
    | {"env", "gpu", "input"}  # the early MLSteam form
)
DEFINITION_KEYS = frozenset({"options", "type", "min", "max", "log", "step", "help"})
INPUT_KEYS = frozenset({"source", "dest"})
TYPES = ("int", "float", "str", "bool", "weights")
WEIGHTS_TYPE = "weights"  # a param naming registered weights (fine-tuning; labyard.weights)
WEIGHTS_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
Scalar = str | int | float | bool


class MlsteamError(YamlError):
    """mlsteam.yml is invalid; `line` is 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message, line=line, source=CONFIG_FILE)


@dataclass(frozen=True)
class ParamDefinition:
    """How a param's values are chosen and checked (all parts optional)."""

    options: tuple[Scalar, ...] | None = None
    type: str | None = None
    min: float | None = None
    max: float | None = None
    help: str = ""
    log: bool = False  # a search samples min..max on a log scale
    step: float | None = None  # a search samples min..max in steps of this


@dataclass(frozen=True)
class InputMount:
    """An early-form `input` entry: a dataset `source` mounted at `dest`."""

    source: str
    dest: str


@dataclass(frozen=True)
class LabConfig:
    """A parsed mlsteam.yml. `params` keeps every param as a list of values, and
    `multi` says which were written as a list (the form shows a multi-select for them)."""

    command: str
    params: dict[str, list[Scalar]]
    multi: frozenset[str]
    definitions: dict[str, ParamDefinition]
    image: str | None = None
    params_as_flags: bool = True
    gpu: int | None = None
    inputs: tuple[InputMount, ...] = ()
    search: SearchSettings | None = None
    output_dataset: OutputDatasetSpec | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def grid(self) -> dict[str, list[Scalar]]:
        """The grid this file selects: each param with its list of values."""
        return {name: list(values) for name, values in self.params.items()}


# --------------------------------------------------------------------------- parsing


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _check_keys(node: Node, allowed: frozenset[str], where: str) -> None:
    if not isinstance(node, MappingNode):
        raise MlsteamError(f"{where} must be a mapping.", line=_line(node))
    seen: set[str] = set()
    for key, _value in node.value:
        name = key.value if isinstance(key, ScalarNode) else None
        if name not in allowed:
            hint = ", ".join(sorted(allowed))
            raise MlsteamError(
                f"unknown key {name!r} in {where} (allowed: {hint}).", line=_line(key)
            )
        if name in seen:
            raise MlsteamError(f"duplicate key {name!r} in {where}.", line=_line(key))
        seen.add(name)


def _child(node: MappingNode, key: str) -> Node | None:
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return v
    return None


def _check_structure(root: Node) -> None:
    """Walk the node tree: unknown keys, and the shapes of params/definitions/input."""
    _check_keys(root, TOP_KEYS, "the file")
    assert isinstance(root, MappingNode)
    params = _child(root, "params")
    if params is not None and not isinstance(params, MappingNode):
        raise MlsteamError("`params` must be a mapping of name: value(s).", line=_line(params))
    definitions = _child(root, "params_definition")
    if definitions is not None:
        if not isinstance(definitions, MappingNode):
            raise MlsteamError("`params_definition` must be a mapping.", line=_line(definitions))
        for key, value in definitions.value:
            _check_keys(value, DEFINITION_KEYS, f"params_definition.{key.value}")
    search = _child(root, "search")
    if search is not None:
        _check_keys(search, SEARCH_KEYS, "search")
    output = _child(root, "output_dataset")
    if output is not None:
        _check_keys(output, OUTPUT_DATASET_KEYS, "output_dataset")
    inputs = _child(root, "input")
    if inputs is not None:
        if not isinstance(inputs, SequenceNode):
            raise MlsteamError("`input` must be a list of {source, dest}.", line=_line(inputs))
        for item in inputs.value:
            _check_keys(item, INPUT_KEYS, "an input entry")


def _scalar(value: Any, where: str, line: int) -> Scalar:
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise MlsteamError(f"{where}: {value!r} is not a string, number or boolean.", line=line)


def _key_lines(node: Node | None) -> dict[str, int]:
    """The line of each key of a mapping node ({} for any other node)."""
    return {str(k.value): _line(k) for k, _ in node.value} if isinstance(node, MappingNode) else {}


def parse_mlsteam(text: str) -> LabConfig:
    """Parse and validate an mlsteam.yml; raise MlsteamError (InvalidInput) with a line."""
    try:  # size, depth and anchors are checked while reading (labyard.yamlcheck)
        root, data = load_checked(text, source=CONFIG_FILE, max_bytes=MAX_BYTES)
    except YamlError as exc:
        raise MlsteamError(exc.reason, line=exc.line) from exc
    if root is None:
        raise MlsteamError("the file is empty; it needs at least `command`.")
    _check_structure(root)
    assert isinstance(root, MappingNode) and isinstance(data, dict)
    lines = _key_lines(_child(root, "params"))
    command = data.get("command")
    if not isinstance(command, str) or not command.strip():
        raise MlsteamError("`command` must be a non-empty string.", line=_line(root))
    try:
        shlex.split(command)
    except ValueError as exc:
        raise MlsteamError(f"`command` cannot be split: {exc}.") from exc
    node = _child(root, "params_definition")
    definition_lines = {  # per entry: its line ("") and the lines of its keys
        str(k.value): {"": _line(k), **_key_lines(v)}
        for k, v in (node.value if isinstance(node, MappingNode) else [])
    }
    definitions = _definitions(data.get("params_definition") or {}, definition_lines)
    params, multi = _params(data.get("params") or {}, definitions, lines)
    for name in definitions:
        if name not in params:
            raise MlsteamError(
                f"params_definition names {name!r}, which is not in params.",
                line=definition_lines.get(name, {}).get(""),
            )
    search = _child(root, "search")
    output = _child(root, "output_dataset")
    return LabConfig(
        command=command,
        params=params,
        multi=frozenset(multi),
        definitions=definitions,
        image=_image(data),
        params_as_flags=_flag(data.get("params_as_flags", True)),
        gpu=_gpu(data.get("gpu")),
        inputs=_inputs(data.get("input") or []),
        search=parse_search_block(search, data["search"]) if search is not None else None,
        output_dataset=(
            parse_output_block(output, data["output_dataset"], params)
            if output is not None
            else None
        ),
        raw=data,
    )


def _params(
    raw: dict[Any, Any], definitions: dict[str, ParamDefinition], lines: dict[str, int]
) -> tuple[dict[str, list[Scalar]], set[str]]:
    params: dict[str, list[Scalar]] = {}
    multi: set[str] = set()
    for key, value in raw.items():
        name = str(key)
        line = lines.get(name, 0) or None
        if not PARAM_NAME_RE.match(name):
            raise MlsteamError(f"param name {name!r} is not a valid flag name.", line=line)
        if isinstance(value, list):
            multi.add(name)
            if not value:
                raise MlsteamError(f"param {name!r} has an empty list of values.", line=line)
            if len(value) > MAX_VALUES_PER_PARAM:
                raise MlsteamError(f"param {name!r} has too many values.", line=line)
            values = value
        else:
            values = [value]
        checked = [_scalar(v, f"param {name!r}", line or 0) for v in values]
        definition = definitions.get(name)
        if definition is not None:
            try:
                checked = [coerce_value(definition, v, name=name) for v in checked]
            except InvalidInput as exc:
                raise MlsteamError(exc.message, line=line) from exc
        params[name] = checked
    return params, multi


def _definitions(raw: Any, lines: dict[str, dict[str, int]]) -> dict[str, ParamDefinition]:
    out: dict[str, ParamDefinition] = {}
    for key, spec in raw.items():
        name, at = str(key), lines.get(str(key), {})
        problem = _definition_problem(spec) or definition_problem(spec)
        if problem is not None:
            line = at.get(problem[0], at.get(""))
            raise MlsteamError(f"params_definition.{name}: {problem[1]}", line=line)
        options = spec.get("options")
        if options is not None:
            where, line = f"an option of {name!r}", at.get("options", 0)
            options = tuple(_scalar(o, where, line) for o in options)
        low, high, step = spec.get("min"), spec.get("max"), spec.get("step")
        help_text, log = spec.get("help", ""), spec.get("log", False)
        out[name] = ParamDefinition(options, spec.get("type"), low, high, help_text, log, step)
    return out


def _definition_problem(spec: dict[str, Any]) -> tuple[str, str] | None:
    """(the key to blame, what is wrong) for an entry's type, options and help."""
    if spec.get("type") is not None and spec["type"] not in TYPES:
        return "type", f"type must be one of {', '.join(TYPES)}."
    options = spec.get("options")
    if options is not None and (not isinstance(options, list) or not options):
        return "options", "options must be a non-empty list."
    if not isinstance(spec.get("help", ""), str):
        return "help", "help must be a string."
    return None


def _image(data: dict[str, Any]) -> str | None:
    image = data.get("image", data.get("env"))
    if image is None:
        return None
    if not isinstance(image, str) or not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9._/:@+\-]{0,254}", image
    ):
        raise MlsteamError(f"`image` {image!r} is not a valid image reference.")
    return image


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise MlsteamError("`params_as_flags` must be true or false.")
    return value


def _gpu(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        raise MlsteamError("`gpu` must be a whole number of GPUs (0-64).")
    return value


def _inputs(raw: list[Any]) -> tuple[InputMount, ...]:
    mounts = []
    for item in raw:
        source, dest = item.get("source"), item.get("dest")
        if not isinstance(source, str) or not isinstance(dest, str) or not source or not dest:
            raise MlsteamError("each `input` entry needs string `source` and `dest`.")
        mounts.append(InputMount(source, dest))
    return tuple(mounts)


# --------------------------------------------------------------------------- values


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_value(definition: ParamDefinition | None, raw: Scalar, *, name: str = "value") -> Scalar:
    """`raw` (a form string or a YAML scalar) as the param's typed value; InvalidInput if not."""
    value: Scalar = raw.strip() if isinstance(raw, str) else raw
    kind = definition.type if definition else None
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
            if not math.isfinite(value):
                raise ValueError
        elif kind == "bool":
            text = str(value).lower()
            if text not in _TRUE | _FALSE:
                raise ValueError
            value = text in _TRUE
        elif kind == "str":
            value = str(value)
        elif kind == WEIGHTS_TYPE:  # a weights name ('' = none); the job mounts them
            value = str(value)
            if value and not WEIGHTS_NAME_RE.match(value):
                raise ValueError
    except (ValueError, OverflowError):  # OverflowError: an int past the float range
        raise InvalidInput(f"{name}: {raw!r} is not a valid {kind}.", field=name) from None
    if definition is None:
        return value
    ranged = definition.min is not None and definition.max is not None
    # with a min..max range declared, options are the suggested values (a search samples
    # the range, and its best value must run again as a job); without one they are the rule
    if definition.options is not None and not ranged and not _among(value, definition.options):
        choices = ", ".join(str(o) for o in definition.options)
        raise InvalidInput(f"{name}: {raw!r} is not one of {choices}.", field=name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if definition.min is not None and value < definition.min:
            raise InvalidInput(
                f"{name}: {value} is below the minimum {definition.min}.", field=name
            )
        if definition.max is not None and value > definition.max:
            raise InvalidInput(
                f"{name}: {value} is above the maximum {definition.max}.", field=name
            )
    return value


def _among(value: Scalar, options: tuple[Scalar, ...]) -> bool:
    return any(value == o or format_value(value) == format_value(o) for o in options)


def format_value(value: Scalar) -> str:
    """A value as one command-line argument (YAML spelling for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- grids


def grid_size(grid: dict[str, list[Any]]) -> int:
    """How many jobs the grid expands into: the product of the value counts."""
    return math.prod(len(values) for values in grid.values())


def iter_grid(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination, one at a time, in a stable order (the last param varies fastest)."""
    names = list(grid)
    for combo in itertools.product(*grid.values()):
        yield dict(zip(names, combo, strict=True))


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination as a list (check the size first: jobs.grid)."""
    return list(iter_grid(grid))


def build_command(config: LabConfig, values: dict[str, Scalar]) -> list[str]:
    """argv of the job: `command` split like a shell (never run by one), then --name value."""
    argv = shlex.split(config.command)
    if config.params_as_flags:
        for name in config.params:
            if name in values:
                argv += [f"--{name}", format_value(values[name])]
    return argv


def resolved_yaml(config: LabConfig, values: dict[str, Scalar]) -> str:
    """The job's copy of mlsteam.yml: the same file with one scalar value per param."""
    data = dict(config.raw)
    data["params"] = {name: values.get(name, vals[0]) for name, vals in config.params.items()}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
