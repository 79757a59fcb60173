"""What the job page reads from a job's folder: the log's tail, a search through the whole
log, the model summary printed in the log, the resolved mlsteam.yml, and the output files.

A job's folder is untrusted (the job writes it): every read is capped, and paths go through
`labyard.paths`, so `..` and outward links are NotFound, an `output/` that is itself a link is
not browsed, walks skip links, and files are opened without following a link.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from labyard.config import Settings
from labyard.errors import InvalidInput, NotFound
from labyard.jobs.logs import LOG_NAME, complete_lines, read_log, split_stamp
from labyard.jobs.service import job_dir
from labyard.mlsteam import CONFIG_FILE
from labyard.paths import read_inside, resolve_existing, safe_root, walk_files

TAIL_BYTES = 2 * 1024 * 1024
SUMMARY_SCAN_BYTES = 8 * 1024 * 1024
SEARCH_CHUNK = 4 * 1024 * 1024
MAX_SEARCH_MATCHES = 1000
MAX_QUERY = 200
MAX_CONFIG_BYTES = 1024 * 1024
MAX_FILES = 2000
SUMMARY_START, SUMMARY_END = "==== Model summary ====", "==== End of summary ===="


def log_path(settings: Settings, job_id: int) -> Path:
    """The job's log file."""
    return job_dir(settings, job_id) / LOG_NAME


def log_tail(settings: Settings, job_id: int, *, lines: int) -> tuple[list[str], int]:
    """The last `lines` whole lines of the log (raw, with their time stamps) and the offset
    just after them, where a live stream continues."""
    path = log_path(settings, job_id)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [], 0
    start = max(0, size - TAIL_BYTES)
    data, _ = read_log(path, start, size - start)
    end = data.rfind(b"\n")
    if end < 0:
        return [], start
    chunk = data[: end + 1]
    if start > 0:  # drop the partial first line
        chunk = chunk[chunk.find(b"\n") + 1 :]
    texts = [line.decode("utf-8", errors="replace") for line in chunk.splitlines()]
    return texts[-lines:], start + end + 1


@dataclass(frozen=True)
class SearchResult:
    """Matching lines of a log search (1-based line numbers) and whether it stopped early."""

    matches: list[tuple[int, str]]
    truncated: bool


def search_log(settings: Settings, job_id: int, query: str) -> SearchResult:
    """Lines of the whole log containing `query` (case-insensitive), at most 1000."""
    query = query.strip()
    if not query or len(query) > MAX_QUERY:
        raise InvalidInput(f"Search for 1 to {MAX_QUERY} characters.", field="q")
    needle = query.lower()
    path = log_path(settings, job_id)
    matches: list[tuple[int, str]] = []
    offset, number = 0, 0
    while True:
        lines, new_offset = complete_lines(path, offset, SEARCH_CHUNK)
        if new_offset == offset:
            return SearchResult(matches, False)
        for raw in lines:
            number += 1
            text = raw.decode("utf-8", errors="replace")
            if needle in text.lower():
                matches.append((number, text))
                if len(matches) >= MAX_SEARCH_MATCHES:
                    return SearchResult(matches, True)
        offset = new_offset


def model_summary(settings: Settings, job_id: int) -> str | None:
    """The model summary the program printed (our template's markers, or Keras's
    `Model: "..."` ... `Total params:` block), from the log's first 8 MiB."""
    lines, _ = complete_lines(log_path(settings, job_id), 0, SUMMARY_SCAN_BYTES)
    texts = [split_stamp(raw)[1] for raw in lines]
    return parse_summary(texts)


def parse_summary(texts: list[str]) -> str | None:
    """The first summary block in these output lines, or None."""
    for i, text in enumerate(texts):
        if text.strip() == SUMMARY_START:
            for j in range(i + 1, len(texts)):
                if texts[j].strip() == SUMMARY_END:
                    return "\n".join(texts[i + 1 : j])
            return "\n".join(texts[i + 1 : i + 2000])
        if text.startswith('Model: "'):
            for j in range(i + 1, min(len(texts), i + 5000)):
                if texts[j].lstrip().startswith("Total params:"):
                    end = j + 1
                    while end < len(texts) and end <= j + 3 and "params:" in texts[end]:
                        end += 1
                    return "\n".join(texts[i:end])
    return None


def config_text(settings: Settings, job_id: int) -> str | None:
    """The job's resolved mlsteam.yml (None when its snapshot is gone)."""
    root = job_dir(settings, job_id)
    data = read_inside(root, f"lab/{CONFIG_FILE}", MAX_CONFIG_BYTES)
    return None if data is None else data.decode("utf-8", errors="replace")


def command_line(command: list[str]) -> str:
    """The job's command as one shell-quoted line (shown, never run by a shell)."""
    return shlex.join(command)


@dataclass(frozen=True)
class OutputFile:
    """One file of a job's output folder."""

    path: str
    size: int


def output_root(settings: Settings, job_id: int) -> Path:
    """The job's output folder, resolved (NotFound when the job made it a link)."""
    folder = job_dir(settings, job_id)
    return safe_root(folder / "output", within=folder)


def list_outputs(settings: Settings, job_id: int) -> tuple[list[OutputFile], bool]:
    """The job's output files (relative paths, sizes), at most 2000, and whether cut."""
    try:
        root = output_root(settings, job_id)
    except NotFound:
        return [], False
    if not root.is_dir():
        return [], False
    files: list[OutputFile] = []
    for path in walk_files(root):
        if len(files) >= MAX_FILES:
            return files, True
        try:
            size = path.stat().st_size
        except OSError:
            continue
        files.append(OutputFile(path.relative_to(root).as_posix(), size))
    return files, False


def output_file(settings: Settings, job_id: int, path: str) -> Path:
    """A file inside the job's output folder, resolved and checked (else NotFound)."""
    root = output_root(settings, job_id)
    if not root.is_dir():
        raise NotFound("No such file or folder.")
    target = resolve_existing(root, path)
    if not target.is_file() or not os.access(target, os.R_OK):
        raise NotFound("No such file.")
    return target
