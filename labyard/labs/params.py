"""The Parameters tab: a form built from a lab's mlsteam.yml.

A param with `options` is a multi-select; any other param is a typed input that takes
comma-separated values (its type is the definition's `type`, else inferred from the
values in the file). What the user selects is checked by the one grid validator,
`labyard.jobs.grid` (values and the grid's size), for count, review and submit alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labyard.jobs.grid import definition_of
from labyard.mlsteam import LabConfig, format_value


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
