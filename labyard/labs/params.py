"""The Parameters tab: a form built from a lab's mlsteam.yml, and the grid a user selects.

A param with `options` is a multi-select; any other param is a typed input that takes
comma-separated values (its type is the definition's `type`, else inferred from the
values in the file). Everything is checked with `mlsteam.coerce_value`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labyard.errors import InvalidInput
from labyard.mlsteam import (
    LabConfig,
    ParamDefinition,
    Scalar,
    coerce_value,
    format_value,
)


@dataclass(frozen=True)
class ParamField:
    """One field of the parameters form."""

    name: str
    kind: str  # "select" (options, several may be chosen) or "input" (typed, comma-separated)
    type: str  # int, float, bool or str
    options: tuple[str, ...]
    selected: tuple[str, ...]  # the file's current values, as text
    help: str

    @property
    def text(self) -> str:
        """The current values as the text input shows them."""
        return ", ".join(self.selected)

    def as_json(self) -> dict[str, Any]:
        """The field for GET /api/v1/labs/{id}/parameters."""
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.type,
            "options": list(self.options),
            "values": list(self.selected),
            "help": self.help,
        }


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


def form_fields(config: LabConfig) -> list[ParamField]:
    """The form's fields in the file's order."""
    fields = []
    for name, values in config.params.items():
        definition = definition_of(config, name)
        options = tuple(format_value(o) for o in definition.options or ())
        fields.append(
            ParamField(
                name=name,
                kind="select" if options else "input",
                type=definition.type or "str",
                options=options,
                selected=tuple(format_value(v) for v in values),
                help=definition.help,
            )
        )
    return fields


def _split(raw: Sequence[Any]) -> list[Any]:
    """Values as given; text values split on commas (commas are reserved, as in MLSteam)."""
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
    config: LabConfig, chosen: Mapping[str, Sequence[Any]]
) -> tuple[dict[str, list[Scalar]], dict[str, str]]:
    """The grid a user chose, and the error of each field that is wrong.

    A param missing from `chosen` keeps the file's values; an unknown name is an error.
    """
    grid: dict[str, list[Scalar]] = {}
    errors: dict[str, str] = {}
    for name in chosen:
        if name not in config.params:
            errors[name] = f"{name}: there is no such parameter in mlsteam.yml."
    for name, current in config.params.items():
        if name not in chosen:
            grid[name] = list(current)
            continue
        raw = chosen[name]
        values = _split(raw if isinstance(raw, list | tuple) else [raw])
        if not values:
            errors[name] = f"{name}: give at least one value."
            continue
        definition = definition_of(config, name)
        try:
            grid[name] = _dedupe([coerce_value(definition, v, name=name) for v in values])
        except InvalidInput as exc:
            errors[name] = exc.message
    return grid, errors


def require_grid(config: LabConfig, chosen: Mapping[str, Sequence[Any]]) -> dict[str, list[Scalar]]:
    """The chosen grid, or InvalidInput naming the first wrong field (the jobs service
    checks the grid's size against its limit)."""
    grid, errors = check_selection(config, chosen)
    if errors:
        name, message = next(iter(errors.items()))
        raise InvalidInput(message, field=name)
    return grid
