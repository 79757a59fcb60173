"""Files inside a dataset folder: path safety, safe names, listing, sizes, zip streaming.

Every path a user sends is a relative path inside one dataset. `resolve_existing` resolves
it (symlinks included) and answers NotFound unless the result stays inside the root, so
`../`, encoded variants, backslashes and outward symlinks all look like missing files.
"""

from __future__ import annotations

import os
import stat
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from labyard.errors import InvalidInput, NotFound

MAX_COMPONENT = 200  # characters of one file or folder name
MAX_DEPTH = 64
ZIP_CHUNK = 1024 * 1024


def split_relative(path: str) -> list[str]:
    """The components of a user path ('' and '/' are the root); '..' or NUL is NotFound."""
    if "\x00" in path or "\\" in path:
        raise NotFound("No such file or folder.")
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or len(parts) > MAX_DEPTH:
        raise NotFound("No such file or folder.")
    return parts


def resolve_existing(root: Path, path: str) -> Path:
    """The existing file or folder `path` inside `root`, symlinks resolved, else NotFound."""
    parts = split_relative(path)
    real_root = root.resolve()
    try:
        target = real_root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound("No such file or folder.") from None
    if target != real_root and not target.is_relative_to(real_root):
        raise NotFound("No such file or folder.")
    return target


def resolve_new(root: Path, folder: str, name: str) -> Path:
    """Where a new entry `name` in existing `folder` goes (the name is checked, not created)."""
    parent = resolve_existing(root, folder)
    if not parent.is_dir():
        raise NotFound("No such folder.")
    return parent / clean_name(name)


def clean_name(name: str, *, field: str = "name") -> str:
    """A safe file or folder name: NUL, '/', '..' refused; control and bidi characters
    replaced by '_'; overlong names shortened (keeping the extension)."""
    if "\x00" in name:
        raise InvalidInput("Names must not contain NUL bytes.", field=field)
    name = unicodedata.normalize("NFC", name).strip()
    if "/" in name or "\\" in name:
        raise InvalidInput("Names must not contain '/' or '\\'.", field=field)
    if name in ("", ".", ".."):
        raise InvalidInput(f"{name!r} is not a valid name.", field=field)
    name = "".join("_" if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in name)
    if len(name) > MAX_COMPONENT or len(name.encode()) > 250:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and stem else ""
        keep = MAX_COMPONENT - len(ext) - 1
        name = name[:keep]
        while len(name.encode()) > 240:
            name = name[:-1]
        name = f"{name}.{ext}" if ext else name
    return name


def clean_relative(path: str, *, field: str = "path") -> list[str]:
    """A user-given relative path for something new (e.g. a dropped folder's file)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        raise InvalidInput("The path is empty.", field=field)
    if len(parts) > MAX_DEPTH:
        raise InvalidInput("The path is too deep.", field=field)
    return [clean_name(p, field=field) for p in parts]


def ensure_folder(root: Path, parts: list[str]) -> Path:
    """The folder `parts` under `root`, created as needed, never leaving the root."""
    real_root = root.resolve()
    current = real_root
    for part in parts:
        current = current / part
        if not current.is_dir():
            current.mkdir(exist_ok=True)
        current = current.resolve()
        if current != real_root and not current.is_relative_to(real_root):
            raise NotFound("No such folder.")
    return current


def relative(root: Path, target: Path) -> str:
    """`target` as a path relative to the dataset root ('' for the root)."""
    rel = target.relative_to(root.resolve())
    return "" if str(rel) == "." else rel.as_posix()


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
    """The entries of `folder`, folders first, by name."""
    real_root = root.resolve()
    entries: list[Entry] = []
    with os.scandir(folder) as it:
        for item in it:
            try:
                info = os.stat(item.path)
            except OSError:
                continue  # a dangling link
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


def tree_stats(folder: Path) -> tuple[int, int]:
    """(bytes, files) under `folder`, links not followed."""
    total = count = 0
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for item in it:
                    if item.is_dir(follow_symlinks=False):
                        stack.append(Path(item.path))
                    elif item.is_file(follow_symlinks=False):
                        total += item.stat(follow_symlinks=False).st_size
                        count += 1
        except FileNotFoundError:
            continue
    return total, count


def walk_files(folder: Path) -> Iterator[Path]:
    """Every regular file under `folder` (links inside the tree not followed), sorted."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


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
            info = zipfile.ZipInfo.from_file(path, path.relative_to(folder).as_posix())
            with path.open("rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(ZIP_CHUNK):
                    dst.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def make_read_only(folder: Path) -> None:
    """Remove write permission from everything under `folder` (public datasets)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(0o444)
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o555)
    folder.chmod(0o555)
