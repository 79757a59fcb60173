"""Log lines as HTML for the job page: the text is escaped first, then ANSI SGR colours and
styles become `ansi-*` classes; every other escape sequence and control character is dropped.

This is the only renderer of log lines: the page's first tail, the lines the live stream
sends (`live.py` sends this HTML; static/js/job.js only inserts it) and log search results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d)(\.\d+)?Z) ")
ESCAPES = re.compile(r"\x1b\[([0-9;]*)([A-Za-z])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class _Style:
    fg: int | None = None
    bg: int | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    under: bool = False

    def classes(self) -> str:
        names = [f"ansi-fg-{self.fg}"] if self.fg is not None else []
        names += [f"ansi-bg-{self.bg}"] if self.bg is not None else []
        for flag in ("bold", "dim", "italic", "under"):
            if getattr(self, flag):
                names.append(f"ansi-{flag}")
        return " ".join(names)

    def apply(self, codes: str) -> None:  # noqa: C901 - one branch per SGR code, as in job.js
        numbers = [int(c) if c.isdigit() else 0 for c in codes.split(";")] if codes else [0]
        i = 0
        while i < len(numbers):
            n = numbers[i]
            if n == 0:
                self.fg = self.bg = None
                self.bold = self.dim = self.italic = self.under = False
            elif n in (1, 2, 3, 4):
                setattr(self, ("bold", "dim", "italic", "under")[n - 1], True)
            elif n == 22:
                self.bold = self.dim = False
            elif n == 23:
                self.italic = False
            elif n == 24:
                self.under = False
            elif 30 <= n <= 37 or 90 <= n <= 97:
                self.fg = n - 30 if n < 90 else n - 90 + 8
            elif n == 39:
                self.fg = None
            elif 40 <= n <= 47 or 100 <= n <= 107:
                self.bg = n - 40 if n < 100 else n - 100 + 8
            elif n == 49:
                self.bg = None
            elif n in (38, 48) and i + 2 < len(numbers) and numbers[i + 1] == 5:
                if numbers[i + 2] < 16:
                    setattr(self, "fg" if n == 38 else "bg", numbers[i + 2])
                i += 2
            elif n in (38, 48) and i + 1 < len(numbers) and numbers[i + 1] == 2:
                i += 4
            i += 1


def ansi_html(text: str) -> Markup:
    """One line's text as safe HTML: escaped, SGR styles as `<span class="ansi-...">`."""
    text = _last_redraw(text)
    style, out, last = _Style(), [], 0

    def emit(chunk: str) -> None:
        chunk = escape(CONTROLS.sub("", chunk), quote=False)
        if not chunk:
            return
        classes = style.classes()
        out.append(f'<span class="{classes}">{chunk}</span>' if classes else chunk)

    for match in ESCAPES.finditer(text):
        emit(text[last : match.start()])
        if match.group(2) == "m":
            style.apply(match.group(1))
        last = match.end()
    emit(text[last:])
    return Markup("".join(out))


def _last_redraw(text: str) -> str:
    """A line redrawn with carriage returns (a progress bar): its last state."""
    cr = text.rfind("\r", 0, max(0, len(text) - 1))
    return text[cr + 1 :] if cr >= 0 else text


def plain(text: str) -> str:
    """The text without escape sequences and control characters (for filtering)."""
    return CONTROLS.sub("", ESCAPES.sub("", _last_redraw(text)))


@dataclass(frozen=True)
class LogLine:
    """One log line as the job page shows it: time (and full stamp), body HTML, filter text."""

    time: str
    stamp: str
    html: Markup
    text: str

    def div(self) -> Markup:
        """The line as the log box shows it: `<div class="ll">`, time, styled body."""
        stamp = Markup("")
        if self.stamp:
            stamp = Markup('<span class="ts" title="{}">{}</span>').format(self.stamp, self.time)
        return Markup('<div class="ll" data-text="{}">{}<span>{}</span></div>').format(
            self.text, stamp, self.html
        )


def log_lines(raw_lines: list[str]) -> list[LogLine]:
    """Raw log lines (`<ISO stamp> <text>`) as the job page renders them."""
    lines = []
    for raw in raw_lines:
        match = STAMP.match(raw)
        body = raw[match.end() :] if match else raw
        stamp, time = (match.group(1), match.group(2)) if match else ("", "")
        lines.append(LogLine(time, stamp, ansi_html(body), plain(body).lower()))
    return lines


def lines_html(raw_lines: list[str]) -> str:
    """Raw log lines as the log box's HTML, one `<div class="ll">` each."""
    return "".join(line.div() for line in log_lines(raw_lines))
