"""Files inside a dataset (or lab) folder: listing, zip streaming, read-only trees.

Path safety (resolving user paths, safe names, walking without following links) lives in
`labyard.paths`, shared by every domain.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from labyard.paths import is_inside, open_nofollow, relative, walk_files

ZIP_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One file or folder in a listing."""

    name: str
    path: str
    type: str  # "file" or "dir"
    size: int
    modified: datetime

    @property
    def is_image(self) -> bool:
        """True for files the browser can preview as images."""
        return self.type == "file" and self.name.lower().endswith(IMAGE_SUFFIXES)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


def list_folder(root: Path, folder: Path) -> list[Entry]:
    """The entries of `folder`, folders first, by name; links are shown as what they point
    to only when that stays inside `root` (else left out, like a dangling link)."""
    real_root = root.resolve()
    entries: list[Entry] = []
    with os.scandir(folder) as it:
        for item in it:
            try:
                if item.is_symlink() and not is_inside(Path(item.path).resolve(), real_root):
                    continue
                info = os.stat(item.path)
            except (OSError, RuntimeError):
                continue  # a dangling or looping link
            is_dir = stat.S_ISDIR(info.st_mode)
            entries.append(
                Entry(
                    name=item.name,
                    path=relative(real_root, folder / item.name),
                    type="dir" if is_dir else "file",
                    size=0 if is_dir else info.st_size,
                    modified=datetime.fromtimestamp(info.st_mtime, UTC),
                )
            )
    entries.sort(key=lambda e: (e.type != "dir", e.name.lower()))
    return entries


class _Sink:
    """A write-only file object collecting what zipfile writes, for streaming it out."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def stream_zip(folder: Path) -> Iterator[bytes]:
    """A zip of `folder` produced piece by piece (stored, zip64), never whole in memory."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[call-overload]
        for path in walk_files(folder):
            info = zipfile.ZipInfo.from_file(  # a 1970 or 2200 mtime (tar keeps them) is clamped
                path, path.relative_to(folder).as_posix(), strict_timestamps=False
            )
            try:  # a file swapped for a link since the walk is left out, never followed
                src = open_nofollow(path)
            except OSError:
                continue
            with src, archive.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(ZIP_CHUNK):
                    dst.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def make_read_only(folder: Path) -> None:
    """Make everything under `folder` read-only and the server's own: 0400 files, 0500 folders
    (public datasets; links left alone)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in filenames + dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink():  # chmod would change what the link points to
                path.chmod(0o500 if name in dirnames else 0o400)
    folder.chmod(0o500)
