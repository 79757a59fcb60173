"""Safe archive extraction (tar, tar.gz/tgz, tar.bz2, tar.xz, zip).

Two passes. `inspect` reads the listing and refuses the archive whole, naming the entry and
the reason, for: absolute paths, '..' components, links leaving the folder, device files,
and the bomb limits (entry count, total bytes, compression ratio). `extract` then writes
into a fresh temporary folder, checking every entry again (the file could have changed) and
never writing through a link; the caller moves the result into the dataset on success.
"""

from __future__ import annotations

import functools
import os
import posixpath
import shutil
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from labyard.datasets.files import clean_name
from labyard.errors import DomainError, InvalidInput, TooLarge

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
COPY_CHUNK = 1024 * 1024
RATIO_MIN_BYTES = 1024 * 1024  # per-entry ratio is checked for entries at least this large


def is_archive(name: str) -> bool:
    """True when `name` has a supported archive suffix."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


class ArchiveRefused(InvalidInput):
    """The archive is unsafe or malformed; nothing was written."""


class ExtractionCancelled(DomainError):
    """The user cancelled the extraction."""


@dataclass(frozen=True)
class Limits:
    """Bomb limits for one archive."""

    max_entries: int
    max_bytes: int
    max_ratio: int


@dataclass(frozen=True)
class Member:
    """One checked archive entry: its safe relative parts and what it is."""

    parts: tuple[str, ...]
    kind: str  # file, dir, symlink, hardlink
    size: int
    link: str = ""  # symlink target as written, or hardlink target's relative path
    mtime: float | None = None


@dataclass(frozen=True)
class Listing:
    """The checked content of an archive."""

    members: list[Member]
    total_bytes: int

    @property
    def top_level(self) -> set[str]:
        """Names the archive puts directly into the target folder."""
        return {m.parts[0] for m in self.members if m.parts}


def _refuse(name: str, reason: str) -> ArchiveRefused:
    return ArchiveRefused(f"Archive refused, nothing was extracted: entry {name!r} {reason}.")


def _safe_parts(raw: str) -> tuple[str, ...]:
    """The entry name as safe parts, or ArchiveRefused."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _refuse(raw, "has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(raw, "has a '..' component")
    if not parts:
        return ()  # the archive's own root ("./"): only allowed for folders
    try:
        return tuple(clean_name(p) for p in parts)
    except InvalidInput as exc:
        raise _refuse(raw, f"has an invalid name ({exc.message})") from None


def _inside(parts: tuple[str, ...], target: str) -> str | None:
    """The link target resolved against the entry's folder, or None when it leaves the root."""
    if target.startswith("/") or "\x00" in target:
        return None
    joined = posixpath.normpath(posixpath.join("/".join(parts[:-1]), target))
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return joined


def _tar_member(info: tarfile.TarInfo) -> Member:
    parts = _safe_parts(info.name)
    if info.isdir():
        return Member(parts, "dir", 0)
    if not parts:
        raise _refuse(info.name, "has an empty name")
    if info.issym():
        if _inside(parts, info.linkname) is None:
            raise _refuse(info.name, f"is a symlink leaving the folder (to {info.linkname!r})")
        return Member(parts, "symlink", 0, info.linkname)
    if info.islnk():
        link = info.linkname.replace("\\", "/")
        if _inside(("",), link) is None or ".." in link.split("/"):
            raise _refuse(info.name, f"is a hardlink leaving the folder (to {info.linkname!r})")
        try:
            target = "/".join(_safe_parts(link))
        except ArchiveRefused:
            raise _refuse(info.name, f"is a hardlink to a bad name {info.linkname!r}") from None
        return Member(parts, "hardlink", 0, target)
    if info.ischr() or info.isblk() or info.isfifo():
        raise _refuse(info.name, "is a device or special file")
    if info.issparse() or not info.isreg():
        raise _refuse(info.name, "is not a regular file, folder or link")
    return Member(parts, "file", info.size, mtime=float(info.mtime))


def _zip_member(info: zipfile.ZipInfo, archive: zipfile.ZipFile, limits: Limits) -> Member:
    parts = _safe_parts(info.filename)
    mode = info.external_attr >> 16
    if info.flag_bits & 0x1:
        raise _refuse(info.filename, "is encrypted")
    if info.file_size >= RATIO_MIN_BYTES and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise _refuse(
            info.filename,
            f"expands more than {limits.max_ratio} times (a zip bomb?)",
        )
    if info.is_dir():
        return Member(parts, "dir", 0)
    if not parts:
        raise _refuse(info.filename, "has an empty name")
    kind = (mode >> 12) & 0o17
    if kind == 0o12:  # symlink: the target is the entry's content
        target = archive.read(info)[:4096].decode("utf-8", "replace")
        if _inside(parts, target) is None:
            raise _refuse(info.filename, f"is a symlink leaving the folder (to {target!r})")
        return Member(parts, "symlink", 0, target)
    if kind not in (0, 0o10):
        raise _refuse(info.filename, "is a device or special file")
    return Member(parts, "file", info.file_size)


def _check_totals(name: str, count: int, total: int, limits: Limits) -> None:
    if count > limits.max_entries:
        raise TooLarge(
            f"Archive refused, nothing was extracted: more than {limits.max_entries} entries."
        )
    if total > limits.max_bytes:
        raise TooLarge(
            f"Archive refused, nothing was extracted: it would extract more than "
            f"{limits.max_bytes} bytes (at entry {name!r})."
        )


def _raw_entries(path: Path, limits: Limits) -> Iterator[tuple[str, Member]]:
    if path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for zinfo in archive.infolist():
                yield zinfo.filename, _zip_member(zinfo, archive, limits)
        return
    with tarfile.open(path, "r:*") as tar:
        for tinfo in tar:
            yield tinfo.name, _tar_member(tinfo)


def inspect(path: Path, limits: Limits) -> Listing:
    """Check every entry of the archive at `path`; ArchiveRefused or TooLarge if unsafe."""
    members: list[Member] = []
    total = 0
    archive_size = max(path.stat().st_size, 1)
    try:
        for raw, member in _raw_entries(path, limits):
            members.append(member)
            total += member.size
            _check_totals(raw, len(members), total, limits)
            if total >= RATIO_MIN_BYTES and total > limits.max_ratio * archive_size:
                raise _refuse(raw, f"makes the archive expand more than {limits.max_ratio} times")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ArchiveRefused(f"Cannot read the archive: {exc}.") from None
    _check_link_targets(members)
    return Listing(members, total)


def _check_link_targets(members: list[Member]) -> None:
    """Hardlinks must point at a regular file that comes earlier in the archive."""
    seen: set[str] = set()
    for member in members:
        rel = "/".join(member.parts)
        if member.kind == "hardlink" and member.link not in seen:
            raise _refuse(rel, f"is a hardlink to {member.link!r}, not an earlier file")
        if member.kind == "file":
            seen.add(rel)


# ---------------------------------------------------------------- writing


Progress = Callable[[int, int], None]  # (bytes written, entries written)


class _Writer:
    """Writes checked members under `root`, never following a link already written."""

    def __init__(self, root: Path, cancel: threading.Event, progress: Progress) -> None:
        self.root = root.resolve()
        self.cancel = cancel
        self.progress = progress
        self.done_bytes = 0
        self.done_entries = 0
        self.checked: dict[tuple[str, ...], Path] = {}

    def _parent(self, member: Member) -> Path:
        key = member.parts[:-1]
        known = self.checked.get(key)
        if known is not None:  # a folder stays a folder: links never replace one
            return known
        parent = self.root.joinpath(*key)
        parent.mkdir(parents=True, exist_ok=True)
        real = parent.resolve()
        if real != self.root and not real.is_relative_to(self.root):
            raise _refuse("/".join(member.parts), "would be written through a link")
        self.checked[key] = real
        return real

    def _clear(self, path: Path) -> None:
        if path.is_symlink() or path.is_file():
            path.unlink()

    def write(self, member: Member, source: Callable[[], Iterator[bytes]] | None) -> None:
        if self.cancel.is_set():
            raise ExtractionCancelled("The extraction was cancelled.")
        if not member.parts:  # the archive's root folder
            self.done_entries += 1
            return
        target = self._parent(member) / member.parts[-1]
        if member.kind == "dir":
            if target.is_symlink():
                raise _refuse("/".join(member.parts), "is a folder replacing a link")
            target.mkdir(exist_ok=True)
        elif member.kind == "symlink":
            self._clear(target)
            os.symlink(member.link, target)
        elif member.kind == "hardlink":
            self._clear(target)
            original = (self.root / member.link).resolve()
            if not original.is_relative_to(self.root) or not original.is_file():
                raise _refuse("/".join(member.parts), "is a hardlink to a missing file")
            shutil.copyfile(original, target, follow_symlinks=False)
        else:
            self._clear(target)
            self._write_file(target, source() if source else iter(()), member)
        self.done_entries += 1
        self.progress(self.done_bytes, self.done_entries)

    def _write_file(self, target: Path, chunks: Iterator[bytes], member: Member) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(target, flags, 0o644)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                self.done_bytes += len(chunk)
                if len(chunk) == COPY_CHUNK:
                    if self.cancel.is_set():
                        raise ExtractionCancelled("The extraction was cancelled.")
                    self.progress(self.done_bytes, self.done_entries)
        if member.mtime is not None:
            os.utime(target, (member.mtime, member.mtime))


def _chunks(stream: IO[bytes] | None) -> Iterator[bytes]:
    if stream is None:
        return
    with stream:
        while chunk := stream.read(COPY_CHUNK):
            yield chunk


def _zip_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    return _chunks(archive.open(info))


def _tar_chunks(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Iterator[bytes]:
    return _chunks(tar.extractfile(info))


def extract(
    path: Path, dest: Path, limits: Limits, *, cancel: threading.Event, progress: Progress
) -> int:
    """Write the archive's checked entries under the empty folder `dest`; answer the count."""
    writer = _Writer(dest, cancel, progress)
    count = total = 0
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    member = _zip_member(info, archive, limits)
                    count, total = count + 1, total + member.size
                    _check_totals(info.filename, count, total, limits)
                    writer.write(member, functools.partial(_zip_chunks, archive, info))
        else:
            with tarfile.open(path, "r:*") as tar:
                for tinfo in tar:
                    member = _tar_member(tinfo)
                    count, total = count + 1, total + member.size
                    _check_totals(tinfo.name, count, total, limits)
                    writer.write(member, functools.partial(_tar_chunks, tar, tinfo))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise ArchiveRefused(f"Cannot read the archive: {exc}.") from None
    return count
