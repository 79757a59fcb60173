"""Safe archive extraction (tar, tar.gz/tgz, tar.bz2, tar.xz, zip) in one pass.

Every entry is checked as it streams in, before any of its bytes are written, and written
into a fresh temporary folder that the caller discards on any error, so a refusal that comes
late still leaves nothing in the dataset. Refused whole, naming the entry and the reason:
absolute paths, '..' components, links leaving the folder, device files, the bomb limits
(entry count, total bytes, compression ratio), and any entry whose path goes through a link.

Why no entry needs `resolve()`: symlinks are only collected while streaming and are created
after every other entry is written, so during the pass the temporary folder holds nothing but
real folders and files made here, and a checked relative name is its real location. Each
link target is stored normalized (leading '..' only, then names), never climbing above the
link's own depth, so it cannot leave the folder however other links are arranged.
"""

from __future__ import annotations

import lzma
import os
import posixpath
import shutil
import struct
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from labyard.errors import DomainError, InvalidInput, TooLarge
from labyard.paths import MAX_COMPONENT, clean_name

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
COPY_CHUNK = 1024 * 1024
RATIO_MIN_BYTES = 1024 * 1024  # per-entry ratio is checked for entries at least this large
REPORT_ENTRIES = 256  # progress is reported every this many entries ...
REPORT_BYTES = 16 * COPY_CHUNK  # ... or this many bytes, whichever comes first
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
NOUNS = {"dir": "folder", "file": "file", "symlink": "link", "hardlink": "file"}
# Zip end records (APPNOTE 4.3.14-16): read before zipfile loads the central directory.
EOCD = struct.Struct("<4s4H2LH")
EOCD64_LOCATOR = struct.Struct("<4sLQL")
EOCD64 = struct.Struct("<4sQ2H2L4Q")
MAX_EOCD_SEARCH = EOCD.size + 0xFFFF  # the record plus the longest comment
CD_BYTES_PER_ENTRY = 1024  # a directory larger than this per listed entry is refused


def is_archive(name: str) -> bool:
    """True when `name` has a supported archive suffix."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


class ArchiveRefused(InvalidInput):
    """The archive is unsafe or malformed; nothing was written into the dataset."""


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
    link: str = ""  # normalized symlink target, or hardlink target's relative path
    mtime: float | None = None


@dataclass(frozen=True)
class Extracted:
    """What an extraction wrote: entries, bytes, and the names directly in the folder."""

    entries: int
    total_bytes: int
    top_level: set[str] = field(default_factory=set)


# (done bytes, done entries, total bytes, total entries); for tar the totals are estimates
# from how much of the archive file was read, exact once the extraction ends.
Progress = Callable[[int, int, int, int], None]


def _refuse(name: str, reason: str) -> ArchiveRefused:
    return ArchiveRefused(f"Archive refused, nothing was extracted: entry {name!r} {reason}.")


def _plain(part: str) -> bool:
    """True when clean_name would answer `part` unchanged (printable ASCII, no edge spaces)."""
    return (
        part.isascii()
        and part.isprintable()
        and len(part) <= MAX_COMPONENT
        and part[0] != " "
        and part[-1] != " "
    )


def _safe_parts(raw: str) -> tuple[str, ...]:
    """The entry name as safe parts, or ArchiveRefused."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _refuse(raw, "has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse(raw, "has a '..' component")
    try:
        return tuple(p if _plain(p) else clean_name(p) for p in parts)
    except InvalidInput as exc:
        raise _refuse(raw, f"has an invalid name ({exc.message})") from None


def _link_target(parts: tuple[str, ...], target: str) -> str | None:
    """The symlink target normalized (leading '..' only), or None when it leaves the root."""
    if not target or target.startswith("/") or "\x00" in target:
        return None
    normal = posixpath.normpath(target)
    ups = 0
    for part in normal.split("/"):
        if part != "..":
            break
        ups += 1
    return None if ups > len(parts) - 1 else normal


def _tar_member(info: tarfile.TarInfo) -> Member:
    parts = _safe_parts(info.name)
    if info.isdir():
        return Member(parts, "dir", 0)
    if not parts:
        raise _refuse(info.name, "has an empty name")
    if info.issym():
        target = _link_target(parts, info.linkname)
        if target is None:
            raise _refuse(info.name, f"is a symlink leaving the folder (to {info.linkname!r})")
        return Member(parts, "symlink", 0, target)
    if info.islnk():
        link = info.linkname.replace("\\", "/")
        if link.startswith("/") or "\x00" in link or ".." in link.split("/"):
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
        raise _refuse(info.filename, f"expands more than {limits.max_ratio} times (a zip bomb?)")
    if info.is_dir():
        return Member(parts, "dir", 0)
    if not parts:
        raise _refuse(info.filename, "has an empty name")
    kind = (mode >> 12) & 0o17
    if kind == 0o12:  # symlink: the target is the entry's content
        with archive.open(info) as stream:
            written = stream.read(4096).decode("utf-8", "replace")
        target = _link_target(parts, written)
        if target is None:
            raise _refuse(info.filename, f"is a symlink leaving the folder (to {written!r})")
        return Member(parts, "symlink", 0, target)
    if kind not in (0, 0o10):
        raise _refuse(info.filename, "is a device or special file")
    return Member(parts, "file", info.file_size)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Tree:
    """The temporary folder being filled: what each written path is, links still to make."""

    def __init__(self, root: Path, limits: Limits, archive_size: int, cancel: threading.Event,
                 progress: Progress, on_top_level: Callable[[str], None]) -> None:  # fmt: skip
        self.root = os.path.realpath(root)
        self.limits, self.archive_size = limits, max(archive_size, 1)
        self.cancel, self.progress, self.on_top_level = cancel, progress, on_top_level
        self.kinds: dict[str, str] = {}  # relative path -> dir, file or symlink
        self.sizes: dict[str, int] = {}  # written files, for hardlink copies
        self.ready: set[str] = {""}  # folders known to be real folders made here
        self.links: dict[str, str] = {}  # symlinks to make at the end: path -> target
        self.top_level: set[str] = set()
        self.entries = self.total = self.done_entries = self.done_bytes = 0
        self.expected: tuple[int, int] | None = None  # exact totals when known up front
        self.read_fraction: Callable[[], float] = lambda: 0.0
        self.next_entries, self.next_bytes = REPORT_ENTRIES, REPORT_BYTES

    # -- limits

    def count(self, raw: str, member: Member) -> None:
        """Count one entry against the bomb limits, before anything of it is written."""
        self.entries += 1
        self.add_bytes(raw, member.size)

    def add_bytes(self, raw: str, size: int) -> None:
        self.total += size
        limits = self.limits
        if self.entries > limits.max_entries:
            raise TooLarge(
                f"Archive refused, nothing was extracted: more than {limits.max_entries} entries."
            )
        if self.total > limits.max_bytes:
            raise TooLarge(
                f"Archive refused, nothing was extracted: it would extract more than "
                f"{limits.max_bytes} bytes (at entry {raw!r})."
            )
        if self.total >= RATIO_MIN_BYTES and self.total > limits.max_ratio * self.archive_size:
            raise _refuse(raw, f"makes the archive expand more than {limits.max_ratio} times")

    # -- placing entries

    def _parents(self, raw: str, parts: tuple[str, ...]) -> None:
        key = ""
        for part in parts[:-1]:
            key = f"{key}/{part}" if key else part
            if key in self.ready:
                continue
            kind = self.kinds.get(key)
            if kind == "symlink":
                raise _refuse(raw, f"goes through the link {key!r}")
            if kind == "file":
                raise _refuse(raw, f"is inside {key!r}, which is a file")
            os.mkdir(f"{self.root}/{key}")
            self.kinds[key] = "dir"
            self.ready.add(key)

    def place(self, raw: str, member: Member) -> str:
        """Check `member` against what is already written; answer its absolute path."""
        if self.cancel.is_set():
            raise ExtractionCancelled("The extraction was cancelled.")
        parts = member.parts
        if not parts:  # the archive's root folder
            return self.root
        if parts[0] not in self.top_level:
            self.on_top_level(parts[0])
            self.top_level.add(parts[0])
        parent = "/".join(parts[:-1])
        if parent not in self.ready:
            self._parents(raw, parts)
        key = f"{parent}/{parts[-1]}" if parent else parts[-1]
        path = f"{self.root}/{key}"
        before, kind = self.kinds.get(key), member.kind
        if kind == "dir":
            if before is None:
                os.mkdir(path)
                self.kinds[key] = "dir"
                self.ready.add(key)
            elif before != "dir":
                raise _refuse(raw, f"is a folder replacing a {NOUNS[before]}")
            return path
        if before == "dir":
            raise _refuse(raw, f"is a {NOUNS[kind]} replacing a folder")
        if kind == "hardlink":
            if member.link == key or self.kinds.get(member.link) != "file":
                raise _refuse(key, f"is a hardlink to {member.link!r}, not an earlier file")
            self.add_bytes(raw, self.sizes[member.link])  # its copy counts as new bytes
        if before == "symlink":
            del self.links[key]
        elif before == "file":
            os.unlink(path)
        if kind == "symlink":
            self.kinds[key] = "symlink"
            self.links[key] = member.link
        else:
            self.kinds[key] = "file"
            self.sizes[key] = self.sizes[member.link] if kind == "hardlink" else member.size
        return path

    # -- writing

    def write(self, raw: str, path: str, size: int, source: IO[bytes], mtime: float | None) -> None:
        """Copy `size` bytes from `source` into the new file `path`."""
        fd = os.open(path, FILE_FLAGS, 0o644)
        try:
            left = size
            while left > 0:
                chunk = source.read(min(left, COPY_CHUNK))
                if not chunk:
                    raise ArchiveRefused(f"Cannot read the archive: entry {raw!r} is truncated.")
                _write_all(fd, chunk)
                left -= len(chunk)
                self.done_bytes += len(chunk)
                if left:
                    if self.cancel.is_set():
                        raise ExtractionCancelled("The extraction was cancelled.")
                    self.report()
            if mtime is not None:
                os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)

    def copy(self, member: Member, path: str) -> None:
        """A hardlink becomes a copy of the earlier file (never a link to anything)."""
        shutil.copyfile(f"{self.root}/{member.link}", path)
        self.done_bytes += self.sizes[member.link]

    def entry_done(self) -> None:
        self.done_entries += 1
        if self.done_entries >= self.next_entries or self.done_bytes >= self.next_bytes:
            self.report()

    def report(self) -> None:
        self.next_entries = self.done_entries + REPORT_ENTRIES
        self.next_bytes = self.done_bytes + REPORT_BYTES
        if self.expected is not None:
            total_bytes, total_entries = self.expected
        else:
            fraction = self.read_fraction()
            scale = 1 / fraction if fraction > 0 else 0
            total_bytes = max(self.done_bytes, int(self.done_bytes * scale))
            total_entries = max(self.done_entries, int(self.done_entries * scale))
        self.progress(self.done_bytes, self.done_entries, total_bytes, total_entries)

    def finish(self) -> Extracted:
        """Make the collected symlinks (nothing else is written after them)."""
        if self.cancel.is_set():
            raise ExtractionCancelled("The extraction was cancelled.")
        for key, target in self.links.items():
            os.symlink(target, f"{self.root}/{key}")
        self.expected = (self.total, self.entries)
        self.report()
        return Extracted(self.entries, self.total, self.top_level)


def _extract_tar(path: Path, tree: _Tree) -> None:
    with path.open("rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
        tree.read_fraction = lambda: raw.tell() / tree.archive_size
        source = tar.fileobj
        assert source is not None
        for info in tar:
            member = _tar_member(info)
            tree.count(info.name, member)
            target = tree.place(info.name, member)
            if member.kind == "file":
                if source.tell() != info.offset_data:  # tarfile leaves it there already
                    source.seek(info.offset_data)
                tree.write(info.name, target, member.size, source, member.mtime)  # type: ignore[arg-type]
            elif member.kind == "hardlink":
                tree.copy(member, target)
            tree.entry_done()


def zip_directory(path: Path) -> tuple[int, int]:
    """(entries, central directory bytes) from a zip's end records, without reading its
    central directory; ArchiveRefused when they are missing or inconsistent."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - MAX_EOCD_SEARCH)
        fh.seek(start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < EOCD.size:
            raise ArchiveRefused("Cannot read the archive: it is not a zip file (no end record).")
        _, _, _, _, entries, cd_size, cd_offset, _ = EOCD.unpack_from(tail, at)
        if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
            locator = start + at - EOCD64_LOCATOR.size
            if locator < 0:
                raise ArchiveRefused("Cannot read the archive: its zip64 end record is missing.")
            fh.seek(locator)
            sig, _, offset, _ = EOCD64_LOCATOR.unpack(fh.read(EOCD64_LOCATOR.size))
            fh.seek(offset if sig == b"PK\x06\x07" and offset < size else size)
            record = fh.read(EOCD64.size)
            if len(record) < EOCD64.size or record[:4] != b"PK\x06\x06":
                raise ArchiveRefused("Cannot read the archive: its zip64 end record is missing.")
            entries, cd_size = EOCD64.unpack(record)[7:9]
    return entries, cd_size


def _check_zip_directory(path: Path, limits: Limits) -> None:
    """Refuse a zip whose end record lists too many entries, or a central directory too
    large for the entries it lists, before zipfile reads (and keeps) that directory."""
    entries, cd_size = zip_directory(path)
    if entries > limits.max_entries:
        raise TooLarge(
            f"Archive refused, nothing was extracted: it lists {entries} entries, more than "
            f"{limits.max_entries}."
        )
    if cd_size > (entries + 1) * CD_BYTES_PER_ENTRY:
        raise ArchiveRefused(
            f"Archive refused, nothing was extracted: its central directory ({cd_size} bytes) "
            f"is too large for the {entries} entries it lists."
        )


def _extract_zip(path: Path, tree: _Tree) -> None:
    _check_zip_directory(path, tree.limits)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        members = []
        for info in infos:  # the central directory: every entry checked before any write
            member = _zip_member(info, archive, tree.limits)
            tree.count(info.filename, member)
            members.append(member)
        tree.expected = (tree.total, tree.entries)
        tree.report()
        for info, member in zip(infos, members, strict=True):
            target = tree.place(info.filename, member)
            if member.kind == "file":
                with archive.open(info) as stream:
                    tree.write(info.filename, target, member.size, stream, None)
            tree.entry_done()


def extract(
    path: Path,
    dest: Path,
    limits: Limits,
    *,
    cancel: threading.Event,
    progress: Progress,
    on_top_level: Callable[[str], None] = lambda name: None,
) -> Extracted:
    """Check and write the archive's entries under the empty folder `dest` in one pass.

    Raises ArchiveRefused / TooLarge (unsafe), ExtractionCancelled, or whatever
    `on_top_level` raises for a name the archive puts directly into the folder. On any
    error `dest` may hold part of the archive: the caller removes it.
    """
    tree = _Tree(dest, limits, path.stat().st_size, cancel, progress, on_top_level)
    if cancel.is_set():
        raise ExtractionCancelled("The extraction was cancelled.")
    try:
        if path.name.lower().endswith(".zip"):
            _extract_zip(path, tree)
        else:
            _extract_tar(path, tree)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as exc:
        raise ArchiveRefused(f"Cannot read the archive: {exc}.") from None
    except OSError as exc:
        if exc.errno is not None:  # the disk, not the archive (gzip/bz2/lzma set none)
            raise
        raise ArchiveRefused(f"Cannot read the archive: {exc}.") from None
    return tree.finish()
