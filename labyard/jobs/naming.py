"""Display names of sweeps and jobs, built in one place.

A sweep is named by its lab and its number in that lab ("QuickStart · sweep 3"); a job by
its number in its sweep and the params whose values differ between the sweep's jobs
("#2 · network=resnet18"), and in full by both ("QuickStart · sweep 3 · #2 · network=resnet18").
The job's number makes the name unique within its sweep, so two jobs never share a name even
when their params print alike; values are printed so that 0.1 and "0.1" still read apart.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

SEP = " · "
PARAMS_MAX = 80  # characters of the param part shown before it is cut with "…"
VALUE_MAX = 32  # characters of one value shown before it is cut with "…"
DIRNAME_MAX_BYTES = 200
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.+\-]*|[A-Za-z0-9_.+\-/]+")
_DIR_BAD = re.compile(r"[/\\\x00-\x1f\x7f]+")


def sweep_display_name(name: str, number: int | None, kind: str | None = None) -> str:
    """ "QuickStart · sweep 3" (the lab's name at submission, the sweep's number in the lab;
    a search's sweep reads "QuickStart · search 4")."""
    return f"{name}{SEP}{kind or 'sweep'} {number}" if number is not None else name


def format_value(value: Any) -> str:
    """A param value as it reads in a name: strings that would read as another type
    (a number, a boolean, null) or hold separators are quoted, so 0.1 and "0.1" differ."""
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and not _reads_as_other_type(value):
            return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _reads_as_other_type(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return text.lower() in ("true", "false", "none", "null", "nan", "inf", "-inf")
    return True


def grid_varying(grid: Mapping[str, Any]) -> list[str]:
    """The names of a sweep's grid that take more than one value (its jobs differ in these)."""
    return [
        name
        for name, vals in grid.items()
        if isinstance(vals, list)
        and len({json.dumps(v, sort_keys=True, default=str) for v in vals}) > 1
    ]


def params_text(params: Mapping[str, Any], names: Iterable[str] | None = None) -> str:
    """ "network=resnet18, lr=0.1" in full (the hover text), for `names` or all params."""
    keys = list(params) if names is None else [n for n in names if n in params]
    return ", ".join(f"{k}={format_value(params[k])}" for k in keys)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def job_label(
    number: int, params: Mapping[str, Any], varying: Iterable[str], *, limit: int = PARAMS_MAX
) -> str:
    """ "#2 · network=resnet18": the job's number in its sweep, then the differing params,
    each value cut at VALUE_MAX and the whole param part at `limit` characters."""
    shown = [f"{k}={_cut(format_value(params[k]), VALUE_MAX)}" for k in varying if k in params]
    head = f"#{number}"
    return f"{head}{SEP}{_cut(', '.join(shown), limit)}" if shown else head


def job_display_name(sweep_name: str, label: str) -> str:
    """ "QuickStart · sweep 3 · #2 · network=resnet18" (a sweep's name and a job's label)."""
    return f"{sweep_name}{SEP}{label}"


def retry_label(number: int, old_label: str) -> str:
    """A retried job's label: its own number, then what it retries ("#3 · retry of #1 · …")."""
    return f"#{number}{SEP}retry of {old_label}"


def safe_dirname(name: str) -> str:
    """`name` usable as one directory name: no slashes or control characters, no leading
    dot, at most DIRNAME_MAX_BYTES bytes of UTF-8 (cut at a character boundary)."""
    text = _DIR_BAD.sub("_", unicodedata.normalize("NFC", name)).strip().lstrip(".")
    data = text.encode()[:DIRNAME_MAX_BYTES]
    return data.decode(errors="ignore").rstrip() or "run"
