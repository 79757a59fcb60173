"""The Parameters tab: a form built from a lab's mlsteam.yml.

A param with `options` is a multi-select; any other param is a typed input that takes
comma-separated values (its type is the definition's `type`, else inferred from the
values in the file). What the user selects is checked by the one grid validator,
`labyard.jobs.grid` (values and the grid's size), for count, review and submit alike.

In search mode the same form also shows the search settings (search_form) and, for a param
whose definition is a typed min..max, a range instead of its values (labyard.searchspec).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.jobs.grid import definition_of
from labyard.mlsteam import WEIGHTS_TYPE, LabConfig, format_value
from labyard.searchspec import ALGORITHMS, EARLY_STOPPING, GOALS, RESOURCES, SearchSettings
from labyard.weights import service as weights_service


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


# A template's `framework` param names these; the distributions that provide each, in order
FRAMEWORK_DISTRIBUTIONS = {
    "pytorch": ("torch",),
    "tensorflow": ("tensorflow-cpu", "tensorflow"),
}
FRAMEWORK_EXTRAS = {"tensorflow": "pip install 'labyard[tensorflow]'"}


@functools.cache
def installed_frameworks() -> dict[str, str | None]:
    """Each known framework's installed version in this environment (None: not installed).
    Local and Slurm jobs run this environment's Python; Docker jobs their image's."""
    found: dict[str, str | None] = {}
    for framework, distributions in FRAMEWORK_DISTRIBUTIONS.items():
        found[framework] = None
        for distribution in distributions:
            try:
                found[framework] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def frameworks_note(options: tuple[str, ...]) -> str:
    """What the form says under a `framework` param: which of its options this installation
    has, and how to add a missing one."""
    installed = installed_frameworks()
    parts = []
    for option in options:
        if option not in installed:
            continue
        version = installed[option]
        hint = FRAMEWORK_EXTRAS.get(option, "")
        parts.append(f"{option} {version}" if version else f"{option} not installed ({hint})")
    if not parts:
        return ""
    return (
        "This installation (local and Slurm jobs): "
        + "; ".join(parts)
        + (". Docker jobs use their image's.")
    )


def _joined(help_text: str, note: str) -> str:
    """A definition's help, then a note of ours as a sentence of its own."""
    if not help_text or not note:
        return help_text or note
    return f"{help_text.rstrip()}{'' if help_text.rstrip().endswith('.') else '.'} {note}"


def weights_choices(db: Session, user: User, project_id: int) -> list[str]:
    """The names of the weights the user can read (a `type: weights` param's options): the
    lab's project's first, then public ones, then those of the user's other projects."""
    readable = weights_service.list_weights(db, user)
    readable.sort(key=lambda w: (w.project_id != project_id, not w.is_public))
    return list(dict.fromkeys(w.name for w in readable))


def form_fields(config: LabConfig, weights: Sequence[str] = ()) -> list[ParamField]:
    """The form's fields in the file's order; a `type: weights` param offers `weights`
    (the registered weights the user can read, weights_choices) besides its values."""
    fields = []
    for name, values in config.params.items():
        definition = definition_of(config, name)
        options = tuple(format_value(o) for o in definition.options or ())
        if definition.type == WEIGHTS_TYPE:
            current = tuple(format_value(v) for v in values if v != "")
            options = tuple(dict.fromkeys((*current, *weights)))
        note = frameworks_note(options) if name == "framework" else ""
        fields.append(
            ParamField(
                name=name,
                kind="select" if options else "input",
                type=definition.type or "str",
                options=options,
                selected=tuple(format_value(v) for v in values),
                help=_joined(definition.help, note),
            )
        )
    return fields


# --------------------------------------------------------------------------- search mode

SEARCH_FIELDS = (  # the search settings the form shows, in its order
    "algorithm",
    "metric",
    "goal",
    "trials",
    "parallel",
    "early_stopping",
    "resource",
    "min_resource",
    "reduction_factor",
)
SEARCH_CHOICES = {
    "algorithm": ALGORITHMS,
    "goal": GOALS,
    "early_stopping": EARLY_STOPPING,
    "resource": RESOURCES,
}


@dataclass(frozen=True)
class ParamRange:
    """A param the search samples from a range (its definition's type, min and max)."""

    min: str
    max: str
    log: bool


@dataclass(frozen=True)
class SearchForm:
    """The Parameters tab's search mode: the settings prefilled from the file's `search:`
    block (the defaults and an empty metric without one) and the params with a range."""

    settings: dict[str, str]
    choices: dict[str, tuple[str, ...]]
    ranges: dict[str, ParamRange]
    from_file: bool


def search_form(config: LabConfig) -> SearchForm:
    """The search mode's fields for this file."""
    base = config.search.as_dict() if config.search is not None else {}
    defaults = {f.name: f.default for f in dataclasses.fields(SearchSettings) if f.name != "metric"}
    values = {**defaults, "metric": "", **base}
    ranges = {
        name: ParamRange(format_value(d.min), format_value(d.max), d.log)
        for name, d in config.definitions.items()
        if name in config.params and d.type in ("float", "int")
        if d.min is not None and d.max is not None
    }
    return SearchForm(
        settings={k: "" if values.get(k) is None else str(values[k]) for k in SEARCH_FIELDS},
        choices=SEARCH_CHOICES,
        ranges=ranges,
        from_file=config.search is not None,
    )
