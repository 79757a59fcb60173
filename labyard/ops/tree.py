"""Copying a data folder tree: what a backup leaves out, and one copier for both ways.

Left out of a backup (everything else is copied, links as links):

- the SQLite database files (`labyard.db`, `-wal`, `-shm`, `-journal`): copied through
  SQLite's online backup API instead (a file copy of a live database can be torn);
- `cache/`: thumbnails, rebuilt when a page asks;
- `tensorboard/`: TensorBoard processes' output and run links (instances are marked
  stopped when the server starts; a new one makes its own);
- `slurm/`: probe folders of `labyard check-executor`;
- `jobs/.incoming/`, `datasets/.work/`: half-made job folders, partial uploads and
  extractions (removed or expired by the server);
- `jobs/*/output/.labyard/runtime/`: a lab session's JupyterLab runtime (pid and kernel
  connection files);
- sockets, FIFOs, devices (a session's `jupyter.sock`): meaningless in a copy;
- `jobs/<id>`, `labs/<id>`, `datasets/<id>`, `searches/<id>` of rows the database snapshot
  lacks: made after the snapshot; restored, they would block the id the database hands
  out next.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from labyard.ops.manifest import FileStats

RUNTIME_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("cache",),
    ("tensorboard",),
    ("slurm",),
    ("jobs", ".incoming"),
    ("datasets", ".work"),
    ("weights", ".work"),
    ("jobs", "*", "output", ".labyard", "runtime"),
)
# top-level folder -> the table whose ids name its folders
ROW_FOLDERS = {
    "jobs": "jobs",
    "labs": "labs",
    "datasets": "datasets",
    "searches": "searches",
    "weights": "weights",
}
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
# one copier beside the walker: on a 2-core machine 4 and 8 copiers were 15-45 % slower
# than one (GIL and per-file syscalls, not the disk, bound many small files)
COPY_THREADS = 1


@dataclass
class Rules:
    """What a copy leaves out: path patterns (tuples of fnmatch parts), and per row folder
    the ids the database snapshot holds (a folder named by another id is left out)."""

    patterns: tuple[tuple[str, ...], ...] = ()
    known_ids: Mapping[str, Collection[int]] = field(default_factory=dict)

    def skips(self, parts: tuple[str, ...]) -> bool:
        """True when the path `parts` (relative to the root) is left out, links included."""
        for pattern in self.patterns:
            if len(pattern) == len(parts) and all(
                fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pattern, strict=True)
            ):
                return True
        return False

    def newer_row(self, parts: tuple[str, ...]) -> bool:
        """True for `<row folder>/<id>` whose id the snapshot does not hold."""
        if len(parts) != 2 or parts[0] not in self.known_ids or not parts[1].isdigit():
            return False
        return int(parts[1]) not in self.known_ids[parts[0]]


def backup_rules(
    data_dir: Path, sqlite_file: Path | None, known_ids: Mapping[str, Collection[int]]
) -> Rules:
    """The rules of a backup of `data_dir` whose database is `sqlite_file` (if SQLite)."""
    patterns = list(RUNTIME_PATTERNS)
    if sqlite_file is not None and sqlite_file.resolve().is_relative_to(data_dir):
        relative = sqlite_file.resolve().relative_to(data_dir).parts
        patterns += [(*relative[:-1], relative[-1] + suffix) for suffix in SQLITE_SUFFIXES]
    return Rules(tuple(patterns), known_ids)


@dataclass
class _Copy:
    """One tree copy in progress: counters, the pool, folders whose times are set last."""

    rules: Rules
    relink: Callable[[str], str]
    pool: ThreadPoolExecutor
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("links", "special_skipped", "vanished"), 0))  # fmt: skip
    newer: list[str] = field(default_factory=list)
    files: list[Future[int | None]] = field(default_factory=list)
    folders: list[tuple[str, str]] = field(default_factory=list)

    def owner(self, src: os.stat_result, dst: str) -> None:
        """Keep the numeric owner as root (as `cp -a` does); others own what they write."""
        if self.as_root:
            os.lchown(dst, src.st_uid, src.st_gid)

    def copy_file(self, src: str, dst: str) -> int | None:
        """Copy one file (contents, mode, times); its size, or None if it vanished."""
        try:
            shutil.copy2(src, dst, follow_symlinks=False)
            if self.as_root:
                self.owner(os.lstat(src), dst)
            return os.lstat(dst).st_size
        except FileNotFoundError:
            return None

    def walk(self, src: str, dst: str, parts: tuple[str, ...]) -> None:
        """Copy the folder `src` into the existing folder `dst`."""
        try:
            entries = list(os.scandir(src))
        except FileNotFoundError:
            self.stats["vanished"] += 1
            return
        for entry in entries:
            here = (*parts, entry.name)
            if self.rules.skips(here):
                continue
            if self.rules.newer_row(here):
                self.newer.append("/".join(here))
                continue
            self.entry(entry, os.path.join(dst, entry.name), here)

    def entry(self, entry: os.DirEntry[str], dst: str, parts: tuple[str, ...]) -> None:
        """Copy one entry of a folder: a link, a folder (recursively) or a file."""
        try:
            if entry.is_symlink():
                os.symlink(self.relink(os.readlink(entry.path)), dst)
                self.owner(entry.stat(follow_symlinks=False), dst)
                self.stats["links"] += 1
            elif entry.is_dir(follow_symlinks=False):
                os.mkdir(dst, 0o700)
                self.owner(entry.stat(follow_symlinks=False), dst)
                self.walk(entry.path, dst, parts)
                self.folders.append((entry.path, dst))
            elif entry.is_file(follow_symlinks=False):
                self.files.append(self.pool.submit(self.copy_file, entry.path, dst))
            else:
                self.stats["special_skipped"] += 1
        except FileNotFoundError:
            self.stats["vanished"] += 1


def copy_tree(
    src: Path, dst: Path, rules: Rules | None = None, relink: Callable[[str], str] = str
) -> FileStats:
    """Copy the tree `src` into the folder `dst` (made if missing): files with their
    contents, modes and times (their owner too as root), links as links (their target
    through `relink`), folders last with their modes and times; what `rules` skips is left
    out. Files that vanish while copying are counted, not errors (jobs go on running)."""
    dst.mkdir(parents=True, exist_ok=True, mode=0o700)
    with ThreadPoolExecutor(COPY_THREADS) as pool:
        job = _Copy(rules or Rules(), relink, pool)
        job.walk(str(src), str(dst), ())
        sizes = [future.result() for future in job.files]
    for source, target in reversed(job.folders):  # children first: their times are kept
        with contextlib.suppress(FileNotFoundError):
            shutil.copystat(source, target, follow_symlinks=False)
    copied = [size for size in sizes if size is not None]
    return FileStats(
        count=len(copied),
        bytes=sum(copied),
        links=job.stats["links"],
        special_skipped=job.stats["special_skipped"],
        vanished=job.stats["vanished"] + len(sizes) - len(copied),
        newer_than_snapshot=sorted(job.newer),
    )


def measure_tree(root: Path) -> FileStats:
    """Regular files, their bytes and the links under `root` (links not followed)."""
    count = size = links = 0
    for folder, dirs, names in os.walk(root):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            stat = os.lstat(os.path.join(folder, name))
            if os.path.islink(os.path.join(folder, name)):
                links += 1
            elif os.path.isfile(os.path.join(folder, name)):
                count, size = count + 1, size + stat.st_size
    return FileStats(count=count, bytes=size, links=links)
