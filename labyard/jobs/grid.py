"""The one grid validator: the values chosen per param, typed and checked against the lab's
mlsteam.yml, and the grid's size checked against LABYARD_MAX_GRID_SIZE from the value counts
alone, before anything is expanded.

    check = check_selection(config, chosen, limit=settings.max_grid_size)
    check.errors, check.size, check.too_many     # what the parameter form shows
    grid = check.require()                       # InvalidInput / TooLarge, else the grid

Used by the parameter form's count and review, by submission (page and API) and by
`jobs.service.create_sweep`. A param with no declared `type` takes the type its values in
the file have; text values split on commas (commas are reserved, as in MLSteam).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labyard.errors import InvalidInput, TooLarge
from labyard.mlsteam import (
    WEIGHTS_TYPE,
    LabConfig,
    ParamDefinition,
    Scalar,
    coerce_value,
    format_value,
    grid_size,
)


@dataclass(frozen=True)
class GridCheck:
    """A checked selection: the grid, each wrong field's error, and the number of jobs."""

    grid: dict[str, list[Scalar]]
    errors: dict[str, str]
    size: int  # jobs the grid makes (0 while a field is wrong)
    limit: int

    @property
    def too_many(self) -> str | None:
        """The message when the grid makes more jobs than the limit allows."""
        if self.size <= self.limit:
            return None
        counts = " × ".join(str(len(v)) for v in self.grid.values() if len(v) > 1)
        return (
            f"This grid makes {self.size} jobs; the limit is {self.limit} (setting "
            f"LABYARD_MAX_GRID_SIZE). It multiplies {counts} values: choose fewer."
        )

    def require(self) -> dict[str, list[Scalar]]:
        """The grid, or InvalidInput naming the first wrong field, or TooLarge."""
        if self.errors:
            name, message = next(iter(self.errors.items()))
            raise InvalidInput(message, field=name)
        if self.too_many:
            raise TooLarge(self.too_many)
        return self.grid


def _infer_type(values: Sequence[Scalar]) -> str:
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    return "str"


def definition_of(config: LabConfig, name: str) -> ParamDefinition:
    """The param's definition with its type filled in (declared, else inferred)."""
    declared = config.definitions.get(name) or ParamDefinition()
    if declared.type:
        return declared
    sample = list(declared.options) if declared.options else config.params[name]
    return dataclasses.replace(declared, type=_infer_type(sample))


def _split(raw: Sequence[Any]) -> list[Any]:
    """Values as given; text values split on commas."""
    out: list[Any] = []
    for item in raw:
        if isinstance(item, str):
            out += [part.strip() for part in item.split(",") if part.strip()]
        else:
            out.append(item)
    return out


def _dedupe(values: list[Scalar]) -> list[Scalar]:
    seen: set[str] = set()
    kept = []
    for value in values:
        key = format_value(value)
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


def check_selection(
    config: LabConfig, chosen: Mapping[str, Any] | None, *, limit: int
) -> GridCheck:
    """Check the values chosen per param (a param missing from `chosen` keeps the file's;
    an unknown name is an error) and the grid's size against `limit`."""
    chosen = chosen or {}
    grid: dict[str, list[Scalar]] = {}
    errors: dict[str, str] = {}
    for name in chosen:
        if name not in config.params:
            errors[name] = f"{name}: mlsteam.yml has no param {name!r}."
    for name, current in config.params.items():
        if name not in chosen:
            grid[name] = list(current)
            continue
        raw = chosen[name]
        values = _split(raw if isinstance(raw, list | tuple) else [raw])
        definition = definition_of(config, name)
        if not values and definition.type == WEIGHTS_TYPE:
            values = [""]  # a weights param's '' is a value: no weights (from scratch)
        if not values:
            errors[name] = f"{name}: give at least one value."
            continue
        try:
            grid[name] = _dedupe([coerce_value(definition, v, name=name) for v in values])
        except InvalidInput as exc:
            errors[name] = exc.message
    return GridCheck(grid, errors, 0 if errors else grid_size(grid), limit)


def resolve_grid(
    config: LabConfig, chosen: Mapping[str, Any] | None, *, limit: int
) -> dict[str, list[Scalar]]:
    """The checked grid, or the first error (InvalidInput, or TooLarge past `limit`)."""
    return check_selection(config, chosen, limit=limit).require()
