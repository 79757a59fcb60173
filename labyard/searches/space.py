"""Each param's search space: from the lab's file (a typed min..max definition is a range,
else the param's values) and a form's or the API's overrides, checked by the same rules as
the file (labyard.searchspec.range_problem) and the grid (labyard.jobs.grid).

    space = search_space(config, form_space)          # {param: ParamSpace}, in params' order
    check_algorithm_fits(settings, space)             # e.g. a grid search needs no ranges
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from labyard.errors import InvalidInput
from labyard.jobs.grid import check_selection
from labyard.mlsteam import (
    MAX_VALUES_PER_PARAM,
    LabConfig,
    ParamDefinition,
    coerce_value,
    format_value,
)
from labyard.searchspec import (
    INT_RE,
    MAX_TRIALS,
    RANGE_KEYS,
    ParamSpace,
    SearchSettings,
    is_finite_number,
    range_problem,
    shown,
)


def _number(raw: Any) -> float | int | None:
    """A finite number from a number or a form string; None when it is not one."""
    if isinstance(raw, str):
        text = raw.strip()
        if INT_RE.match(text):
            raw = int(text)
        else:
            try:
                raw = float(text)
            except ValueError:
                return None
    return raw if is_finite_number(raw) else None


def _wrong(name: str, text: str) -> InvalidInput:
    """The error for param `name` of a search space."""
    return InvalidInput(f"{name}: {text}", field=name)


def _flag(raw: Any, name: str) -> bool:
    if raw is None:
        return False
    if not isinstance(raw, bool | str):
        raise _wrong(name, f"log must be true or false, not {shown(raw)}.")
    return bool(coerce_value(ParamDefinition(type="bool"), raw, name=name))


# --------------------------------------------------------------------------- spaces


def _from_file(config: LabConfig, name: str) -> ParamSpace:
    """A param's space from the file: its typed min..max range, else its values."""
    d = config.definitions.get(name)
    if d is not None and d.type in ("float", "int") and d.min is not None and d.max is not None:
        if d.type == "float":
            return ParamSpace("float", float(d.min), float(d.max), d.log, d.step)
        low, high = math.ceil(d.min), math.floor(d.max)  # the file's values lie within
        if low == high:
            return ParamSpace("fixed", choices=(low,))
        step = int(d.step) if d.step is not None else None
        return ParamSpace("int", low, high, d.log, step)
    unique = list({format_value(v): v for v in config.params[name]}.values())
    if len(unique) == 1:
        return ParamSpace("fixed", choices=(unique[0],))
    return ParamSpace("categorical", choices=tuple(unique))


def _range_kind(config: LabConfig, name: str, numbers: list[float]) -> str:
    """float or int for a range over `name` (declared, else from the file's values)."""
    definition = config.definitions.get(name)
    declared = definition.type if definition is not None else None
    if declared in ("str", "bool"):
        raise _wrong(name, f"a range needs a number param; its type is {declared}.")
    if declared in ("int", "float"):
        return declared
    values = config.params[name]
    if not all(is_finite_number(v) for v in values):
        raise _wrong(name, "a range needs number values; give values instead.")
    whole = all(isinstance(v, int) for v in values) and all(float(n).is_integer() for n in numbers)
    return "int" if whole else "float"


def _range_override(config: LabConfig, name: str, raw: Mapping[str, Any]) -> ParamSpace:
    """A range a form or the API gives for `name`, checked against the file's definition."""
    unknown = sorted(str(k) for k in raw if k not in RANGE_KEYS)
    if unknown:
        raise _wrong(name, f"{unknown[0]!r} is not a range key (min, max, log, step; or values).")
    bounds: dict[str, float | int | None] = {}
    for key in ("min", "max", "step"):
        given = raw.get(key)
        bounds[key] = None if given is None or given == "" else _number(given)
        if bounds[key] is None and not (key == "step" and (given is None or given == "")):
            raise _wrong(name, f"{key} must be a finite number, not {shown(given)}.")
    low, high, step = bounds["min"], bounds["max"], bounds["step"]
    assert low is not None and high is not None
    log = _flag(raw.get("log"), name)
    kind = _range_kind(config, name, [low, high, *([step] if step is not None else [])])
    definition = config.definitions.get(name)
    if definition is not None and definition.min is not None and low < definition.min:
        raise _wrong(name, f"min {low} is below the file's minimum {definition.min}.")
    if definition is not None and definition.max is not None and high > definition.max:
        raise _wrong(name, f"max {high} is above the file's maximum {definition.max}.")
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise _wrong(name, f"an int range needs whole numbers ({low}..{high}).")
    problem = range_problem(kind, low, high, log=log, step=step)
    if problem is not None:
        raise _wrong(name, problem[1])
    if kind == "int":
        return ParamSpace("int", int(low), int(high), log, int(step) if step else None)
    return ParamSpace("float", float(low), float(high), log, step)


def _values_of(name: str, raw: Any) -> list[Any]:
    """An override given as values: a list, or one scalar."""
    values = list(raw) if isinstance(raw, list | tuple) else [raw]
    if not values:
        raise _wrong(name, "give at least one value.")
    if len(values) > MAX_VALUES_PER_PARAM:
        raise _wrong(name, f"at most {MAX_VALUES_PER_PARAM} values.")
    for value in values:
        if not isinstance(value, str | int | float | bool):
            raise _wrong(name, f"{shown(value)} is not a string, number or boolean.")
    return values


def search_space(
    config: LabConfig, overrides: Mapping[str, Any] | None = None
) -> dict[str, ParamSpace]:
    """Every param's space, in the file's order: `overrides[name]` ({"min", "max", "log"?,
    "step"?}, {"values": [...]}, a list of values or one value) over the file's (a typed
    min..max definition is a range; else the param's values). Values follow the grid's rules
    (labyard.jobs.grid: commas split text, typed by the definition). InvalidInput(field=name)."""
    overrides = overrides or {}
    for name in overrides:
        if name not in config.params:
            raise _wrong(str(name), f"mlsteam.yml has no param {name!r}.")
    chosen: dict[str, list[Any]] = {}
    space: dict[str, ParamSpace] = {}
    for name in config.params:
        raw = overrides.get(name)
        if name not in overrides:
            space[name] = _from_file(config, name)
        elif isinstance(raw, Mapping) and "values" not in raw:
            space[name] = _range_override(config, name, raw)
        elif isinstance(raw, Mapping):
            if set(raw) != {"values"}:
                raise _wrong(name, "give values or a range (min, max), not both.")
            chosen[name] = _values_of(name, raw["values"])
        else:
            chosen[name] = _values_of(name, raw)
    check = check_selection(config, chosen, limit=MAX_TRIALS)
    for name in chosen:
        if name in check.errors:
            raise InvalidInput(check.errors[name], field=name)
        values = check.grid[name]
        kind = "fixed" if len(values) == 1 else "categorical"
        space[name] = ParamSpace(kind, choices=tuple(values))
    return {name: space[name] for name in config.params}


def check_algorithm_fits(settings: SearchSettings, space: dict[str, ParamSpace]) -> None:
    """InvalidInput when the algorithm cannot search this space: a grid needs choices for
    every param; CMA-ES needs at least one number range. (Hyperband without max_resource
    lets the pruner pick it: "auto".)"""
    ranges = [name for name, p in space.items() if p.kind in ("float", "int")]
    if settings.algorithm == "grid" and ranges:
        raise InvalidInput(
            f"A grid search needs values for every param; {ranges[0]} is a range: "
            "give it values, or choose random, tpe or cmaes.",
            field=ranges[0],
        )
    if settings.algorithm == "cmaes" and not ranges:
        raise InvalidInput(
            "CMA-ES needs at least one param with a number range (min and max).",
            field="algorithm",
        )


def grid_size_of(space: dict[str, ParamSpace]) -> int | None:
    """The combinations a grid over `space` makes; None when a param is a range."""
    if any(p.kind in ("float", "int") for p in space.values()):
        return None
    return math.prod(len(p.choices) for p in space.values())
