"""A lab's search: the `search:` block of mlsteam.yml and each param's search space.

    settings = config.search                          # SearchSettings | None (parse_mlsteam)
    settings = search_settings(config.search, form)   # a form's / the API's settings over it

Pure checks, no Optuna. Each param's search space (ParamSpace) is built from the file and a
form's or the API's ranges by labyard.searches.space; the searches domain makes a study of it.
The file's errors are MlsteamError with the line of the offending key (parse_search_block);
a form's or the API's are InvalidInput naming the field. Both go through one set of rules
(_settings, range_problem).
A form may send every value as a string ("40", "true"); an empty max_resource or seed there
means "auto" (None), an empty value of any other setting keeps the file's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from yaml.nodes import MappingNode, Node

from labyard.errors import InvalidInput

if TYPE_CHECKING:
    from labyard.mlsteam import Scalar

ALGORITHMS = ("grid", "random", "tpe", "cmaes")
EARLY_STOPPING = ("none", "asha", "hyperband", "median")
GOALS = ("maximize", "minimize")
RESOURCES = ("step", "iter", "epoch")
KINDS = ("float", "int", "categorical", "fixed")
MAX_TRIALS = 1000
MAX_RESOURCE = 10**9
MAX_REDUCTION_FACTOR = 100
MAX_SEED = 2**31 - 1
RANGE_KEYS = frozenset({"min", "max", "log", "step"})
# A series a job's metric lines make (labyard.jobs.metrics: `<Group>_<name>` over an x axis;
# a unit test keeps these groups equal to metrics.GROUPS).
METRIC_GROUPS = ("Train", "Validation", "Test")
_METRIC_RE = re.compile(rf"^({'|'.join(METRIC_GROUPS)})_([A-Za-z_][A-Za-z0-9_.\-]{{0,63}})$")
INT_RE = re.compile(r"^[+-]?\d{1,18}$")


@dataclass(frozen=True)
class SearchSettings:
    """How a search samples, judges and stops its trials (see the module docstring)."""

    metric: str
    algorithm: str = "tpe"
    goal: str = "maximize"
    trials: int = 20
    parallel: int = 1
    early_stopping: str = "none"
    resource: str = "epoch"
    min_resource: int = 1
    max_resource: int | None = None  # None: the pruner decides ("auto")
    reduction_factor: int = 3
    seed: int | None = None  # None: the search picks one

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-able data (SearchSettings(**as_dict()) gives them back)."""
        return asdict(self)


SEARCH_KEYS = frozenset(f.name for f in fields(SearchSettings))
_OPTIONAL = frozenset({"max_resource", "seed"})


@dataclass(frozen=True)
class ParamSpace:
    """One param's search space: a float or int range (low..high, optionally log-scaled or
    stepped), categorical choices, or one fixed value (`choices[0]`)."""

    kind: str  # "float" | "int" | "categorical" | "fixed"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Scalar, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The space as JSON-able data (from_dict gives it back)."""
        data = asdict(self)
        data["choices"] = list(self.choices)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamSpace:
        """The space that as_dict wrote (stored as JSON); ValueError for an unknown kind."""
        kind = str(data.get("kind"))
        if kind not in KINDS:
            raise ValueError(f"unknown param space kind {kind!r}")
        return cls(
            kind=kind,
            low=data.get("low"),
            high=data.get("high"),
            log=bool(data.get("log", False)),
            step=data.get("step"),
            choices=tuple(data.get("choices") or ()),
        )


# --------------------------------------------------------------------------- settings


class _Bad(Exception):
    """One setting is wrong: `key` names it, `text` says what is allowed."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__(text)
        self.key = key
        self.text = text


def shown(raw: Any) -> str:
    """A short, safe rendering of a value a user gave."""
    if isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) >= 10**18:
        return "a number that large"
    text = repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."


def _choice(key: str, raw: Any, allowed: tuple[str, ...], form: bool) -> str:
    value = raw.strip() if form and isinstance(raw, str) else raw
    if not isinstance(value, str) or value not in allowed:
        raise _Bad(key, f"must be one of {', '.join(allowed)}, not {shown(raw)}.")
    return value


def _whole(key: str, raw: Any, low: int, high: int, form: bool) -> int:
    value = raw
    if form and isinstance(raw, str) and INT_RE.match(raw.strip()):
        value = int(raw.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Bad(key, f"must be a whole number from {low} to {high}, not {shown(raw)}.")
    return value


def _metric(raw: Any, form: bool) -> str:
    value = raw.strip() if form and isinstance(raw, str) else raw
    match = _METRIC_RE.match(value) if isinstance(value, str) else None
    if match is None or match.group(2) in RESOURCES:
        raise _Bad(
            "metric",
            "must name a series the jobs print: Train_, Validation_ or Test_ and the "
            f"metric's name (like Validation_acc), not {shown(raw)}.",
        )
    return value


def _one_setting(key: str, raw: Any, form: bool) -> Any:
    """One setting's checked value (keys already known)."""
    if key in _OPTIONAL and raw is None:
        return None
    if key == "metric":
        return _metric(raw, form)
    named = {
        "algorithm": ALGORITHMS,
        "goal": GOALS,
        "early_stopping": EARLY_STOPPING,
        "resource": RESOURCES,
    }
    if key in named:
        return _choice(key, raw, named[key], form)
    low, high = {
        "trials": (1, MAX_TRIALS),
        "parallel": (1, MAX_TRIALS),
        "min_resource": (1, MAX_RESOURCE),
        "max_resource": (2, MAX_RESOURCE),
        "reduction_factor": (2, MAX_REDUCTION_FACTOR),
        "seed": (0, MAX_SEED),
    }[key]
    return _whole(key, raw, low, high, form)


def _settings(
    values: Mapping[Any, Any], base: SearchSettings | None, *, form: bool
) -> SearchSettings:
    """`values` over `base` (or the defaults), every rule checked; _Bad for the first wrong."""
    merged: dict[str, Any] = base.as_dict() if base is not None else {}
    for key, raw in values.items():
        name = str(key)
        if name not in SEARCH_KEYS:
            allowed = ", ".join(sorted(SEARCH_KEYS))
            raise _Bad(name, f"is not a search setting (allowed: {allowed}).")
        if form and (raw is None or (isinstance(raw, str) and not raw.strip())):
            if name in _OPTIONAL:
                merged[name] = None
            continue  # an empty form field keeps the file's value
        merged[name] = _one_setting(name, raw, form)
    if "metric" not in merged:
        raise _Bad("metric", "is required: the series to optimize, like Validation_acc.")
    settings = SearchSettings(**merged)
    parallel, trials = settings.parallel, settings.trials
    if parallel > trials:  # blame the one the user gave (a form may change either)
        if "parallel" in values or "trials" not in values:
            raise _Bad("parallel", f"must not exceed trials ({trials}), not {parallel}.")
        raise _Bad("trials", f"must not be below parallel ({parallel}), not {trials}.")
    low, high = settings.min_resource, settings.max_resource
    if high is not None and high <= low:
        if "max_resource" in values:
            raise _Bad("max_resource", f"must be above min_resource ({low}), not {high}.")
        raise _Bad("min_resource", f"must be below max_resource ({high}), not {low}.")
    return settings


def parse_search_block(node: Node, data: Any) -> SearchSettings:
    """The `search:` block of mlsteam.yml (`node`: its YAML node, for lines; `data`: its
    loaded value); MlsteamError with the line of the offending key."""
    from labyard.mlsteam import MlsteamError  # mlsteam imports this module

    here = int(node.start_mark.line) + 1
    if not isinstance(node, MappingNode) or not isinstance(data, dict):
        raise MlsteamError("`search` must be a mapping of settings (metric, ...).", line=here)
    lines = {str(k.value): int(k.start_mark.line) + 1 for k, _ in node.value}
    try:
        return _settings(data, None, form=False)
    except _Bad as bad:
        where = f"unknown key {bad.key!r} in search:" if bad.key not in SEARCH_KEYS else None
        message = f"{where or 'search.' + bad.key} {bad.text}"
        raise MlsteamError(message, line=lines.get(bad.key, here)) from None


def search_settings(base: SearchSettings | None, overrides: Mapping[str, Any]) -> SearchSettings:
    """A form's or the API's settings over the file's (`base`; None: `metric` must be in
    `overrides`), by the file's rules; InvalidInput naming the wrong field."""
    try:
        return _settings(overrides, base, form=True)
    except _Bad as bad:
        raise InvalidInput(f"{bad.key} {bad.text}", field=bad.key) from None


# --------------------------------------------------------------------------- ranges


def is_finite_number(value: Any) -> bool:
    """True for an int or float (not a bool) that is finite as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int past the float range
        return False


def range_problem(
    kind: str | None,
    low: float | None,
    high: float | None,
    *,
    log: bool = False,
    step: float | None = None,
) -> tuple[str, str] | None:
    """What is wrong with a range (min/max/log/step of a param of type `kind`) as
    (the key to blame, the message), or None. Numbers are finite already. One rule set for
    the file's params_definition and for a form's ranges."""
    numeric = kind in ("int", "float")
    if log and not numeric:
        return "log", "log: true needs type float or int."
    if log and (low is None or low <= 0):
        return "log", "log: true needs min above 0."
    if low is not None and high is not None:
        if low >= high:
            return "max", f"min ({low}) must be below max ({high})."
        if not math.isfinite(float(high) - float(low)):
            return "max", "the range from min to max is too wide."
    if step is None:
        return None
    if not numeric or low is None or high is None:
        return "step", "step needs type int or float, min and max."
    if step <= 0:
        return "step", f"step ({step}) must be above 0."
    if kind == "int" and not float(step).is_integer():
        return "step", f"step ({step}) of an int must be a whole number."
    if log:
        return "step", "step cannot be combined with log: true."
    return None


def definition_problem(spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """(the key to blame, what is wrong) for the search part of a params_definition entry
    (min, max, log, step; its type is checked already), or None."""
    for key in ("min", "max", "step"):
        if spec.get(key) is not None and not is_finite_number(spec[key]):
            return key, f"{key} must be a finite number."
    if not isinstance(spec.get("log", False), bool):
        return "log", "log must be true or false."
    kind, log, step = spec.get("type"), spec.get("log", False), spec.get("step")
    return range_problem(kind, spec.get("min"), spec.get("max"), log=log, step=step)
