"""What the user commands print: rich tables for people, the API's JSON verbatim with
`--json`, and refusals as `error: <the server's message>` on stderr with exit status 1."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from labyard.client.config import NotLoggedIn
from labyard.client.http import ApiError

F = TypeVar("F", bound=Callable[..., Any])
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


def command(app: typer.Typer, name: str | None = None) -> Callable[[F], F]:
    """`app.command` for commands that call the API: a refusal (the server's, or a missing
    login) ends the command with `error: <message>` on stderr and status 1."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except (ApiError, NotLoggedIn) as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                raise typer.Exit(1) from None

        app.command(name)(run)
        return fn

    return register


def print_json(data: Any) -> None:
    """JSON for scripts: the data as the API answered it."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cell(value: Any) -> str:
    """A table cell: empty for None, `k=v` pairs for dicts, plain text otherwise."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], title: str = "") -> Table:
    """A rich table of `columns` (keys of each row)."""
    result = Table(title=title or None, show_edge=False, header_style="bold")
    for name in columns:
        result.add_column(name.replace("_", " "), overflow="fold")
    for row in rows:
        result.add_row(*(Text(cell(row.get(name))) for name in columns))
    return result


def show(data: Any, as_json: bool, columns: Sequence[str], title: str = "") -> None:
    """`--json`: the data; else a table of a list, or `key: value` lines of one item."""
    if as_json:
        print_json(data)
    elif isinstance(data, list):
        out.print(table(data, columns, title))
    else:
        for name in columns:
            out.print(Text.assemble((f"{name}: ", "bold"), cell(data.get(name))))


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def parse_size(text: str) -> int:
    """'8M', '512k', '1G' or a number of bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    clean = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(clean[-1:], 1)
    number = clean[:-1] if clean[-1:] in units else clean
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a size (e.g. 8M, 512k, 1G)") from None
    if value < 1:
        raise typer.BadParameter("the size must be at least one byte")
    return value
