"""The one file viewer of every domain (job outputs, dataset files, lab files).

A domain's service resolves the file (its permission check, then `labyard.paths`) and hands
the resolved path here; this module only reads it, bounded, and says how to show it:

- images (PNG, JPEG, GIF, WebP, BMP): an <img> pointing at the domain's raw route, small ones
  scaled up by a whole factor (shown pixelated, so 32×32 digits are readable);
- CSV/TSV: the first rows as a table (cells are text, escaped by the template);
- JSON: pretty-printed when it parses within the limit, else shown as text;
- Markdown: rendered by markdown-it-py with raw HTML off (a `<script>` shows as text) and
  links limited to http, https, mailto and relative ones;
- other UTF-8 text: lines with their numbers;
- anything else (a NUL byte, not UTF-8): a download link only.

Past the limits (bytes, rows, columns) the view is cut and says so; the download link always
gives the whole file. Raw image bytes are served inline only for raster image types, never
SVG or HTML, so a job's output cannot run script on the platform's origin.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fastapi.responses import FileResponse
from markdown_it import MarkdownIt
from PIL import Image, UnidentifiedImageError

from labyard.errors import NotFound
from labyard.paths import open_nofollow

Kind = Literal["image", "csv", "json", "markdown", "text", "binary"]

PREVIEW_BYTES = 512 * 1024  # text, CSV and Markdown read at most this much
JSON_BYTES = 2 * 1024 * 1024  # JSON up to this size is parsed and pretty-printed
CSV_ROWS = 200
CSV_COLUMNS = 50
CSV_CELL = 500  # characters of one cell
SCALE_TO = 384  # small images are scaled up by a whole factor towards this many pixels
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
SUFFIXES: dict[str, Kind] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
}
SAFE_SCHEMES = ("http:", "https:", "mailto:")


@dataclass
class FileView:
    """What the viewer shows for one file (the template `_viewer.html` draws it)."""

    name: str
    size: int
    kind: Kind
    raw_url: str = ""
    download_url: str = ""
    lines: list[str] = field(default_factory=list)  # text and pretty JSON
    rows: list[list[str]] = field(default_factory=list)  # CSV, the first is the header
    html: str = ""  # rendered Markdown (safe: raw HTML off, links checked)
    width: int = 0  # images: the width to show (0 = the browser's own)
    height: int = 0
    scaled: bool = False  # a small image scaled up (drawn pixelated)
    truncated: bool = False
    note: str = ""  # why nothing or only part is shown


def kind_of(name: str) -> Kind | None:
    """The kind a file's name says (None: decide by its content)."""
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_TYPES:
        return "image"
    return SUFFIXES.get(suffix)


def view_file(path: Path, *, name: str, raw_url: str, download_url: str) -> FileView:
    """The view of the already resolved and permitted file `path` (read bounded, no links)."""
    size = path.stat().st_size
    kind = kind_of(name)
    view = FileView(name=name, size=size, kind=kind or "text", raw_url=raw_url)
    view.download_url = download_url
    if kind == "image":
        return _image(path, view)
    limit = JSON_BYTES if kind == "json" and size <= JSON_BYTES else PREVIEW_BYTES
    with open_nofollow(path) as fh:
        data = fh.read(limit)
    view.truncated = size > len(data)
    text = _decode(data, cut=view.truncated)
    if text is None:
        view.kind, view.note = "binary", "This file is not text; download it to open it."
        return view
    if kind == "json" and not view.truncated:
        _json(text, view)
    elif kind == "csv":
        _csv(text, view, delimiter="\t" if name.lower().endswith(".tsv") else ",")
    elif kind == "markdown":
        view.html = render_markdown(text)
    else:
        view.kind, view.lines = "text", _lines(text, view)
    if view.truncated and not view.note:
        view.note = f"Only the first {_size(len(data))} of {_size(size)} are shown."
    return view


def _decode(data: bytes, *, cut: bool) -> str | None:
    """UTF-8 text, or None for binary data (a NUL byte, or not UTF-8)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(data) - 3:  # a character split by the limit
            return data[: exc.start].decode("utf-8")
        return None


def _lines(text: str, view: FileView) -> list[str]:
    lines = text.splitlines()
    if view.truncated and lines and not text.endswith("\n"):
        lines.pop()  # the last line is cut; show whole lines only
    return lines


def _json(text: str, view: FileView) -> None:
    try:
        value = json.loads(text)
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
    except json.JSONDecodeError as exc:
        view.kind, view.lines = "text", text.splitlines()
        view.note = f"Not valid JSON ({exc.msg}, line {exc.lineno}); shown as text."
        return
    except (ValueError, RecursionError):  # huge numbers, deep nesting
        view.kind, view.lines = "text", text.splitlines()
        view.note = "This JSON cannot be pretty-printed; shown as text."
        return
    view.kind = "json"
    view.lines = pretty.splitlines()


def _csv(text: str, view: FileView, *, delimiter: str) -> None:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[list[str]] = []
    cut_columns = False
    try:
        for row in reader:
            if len(rows) > CSV_ROWS:
                view.truncated = True
                break
            cut_columns |= len(row) > CSV_COLUMNS
            rows.append([cell[:CSV_CELL] for cell in row[:CSV_COLUMNS]])
    except csv.Error as exc:
        view.kind, view.lines = "text", _lines(text, view)
        view.note = f"Not a readable CSV file ({exc}); shown as text."
        return
    if view.truncated and len(rows) > 1 and not text.endswith("\n"):
        rows.pop()
    view.rows = rows[: CSV_ROWS + 1]
    if view.truncated:
        view.note = f"Only the first {len(view.rows) - 1} rows are shown."
    if cut_columns:
        view.note = (view.note + f" Only the first {CSV_COLUMNS} columns are shown.").strip()


def _image(path: Path, view: FileView) -> FileView:
    Image.MAX_IMAGE_PIXELS = 100_000_000
    try:
        with Image.open(path) as image:  # reads the header only
            width, height = image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        view.kind, view.note = "binary", "This image cannot be read; download it to open it."
        return view
    factor = max(1, SCALE_TO // max(width, height, 1))
    view.width, view.height, view.scaled = width * factor, height * factor, factor > 1
    return view


def _size(num: int) -> str:
    from labyard.web.render import human_size

    return human_size(num)


def _safe_link(url: str) -> bool:
    """Links and images may use http, https, mailto or be relative; nothing else."""
    lowered = "".join(url.split()).lower()
    head = lowered.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return ":" not in head or lowered.startswith(SAFE_SCHEMES)


_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_markdown.validateLink = _safe_link  # type: ignore[method-assign]


def render_markdown(text: str) -> str:
    """Markdown as HTML: raw HTML escaped, links and images only with safe schemes."""
    return _markdown.render(text)


def inline_image(path: Path) -> FileResponse:
    """The raw bytes of a raster image to show inline (SVG and others: NotFound)."""
    media_type = IMAGE_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise NotFound("Only images are shown inline; download other files.")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private"})
