"""Path safety for every domain: the one place that turns a path a user or a job controls
into a file the platform may touch.

Datasets, lab files, job outputs, TensorBoard log dirs, insight, zip downloads, moves and
extraction all go through here. The rules:

- A user path is relative; `..`, NUL, backslashes and absolute paths are refused.
- It is resolved (links included) and must stay inside its root, else NotFound, so outward
  links look like missing files. A root that is itself a link, or resolves outside the folder
  that should hold it, is refused too (a job can turn its `output/` into a link).
- Walking a tree never follows links (`os.walk(followlinks=False)`, links skipped), and files
  read from trees a job writes are opened with O_NOFOLLOW.
- A move may not carry a relative link to where it would point outside the root.
- Messages name paths relative to their root, never the server's absolute paths.
"""

from __future__ import annotations

import os
import posixpath
import stat
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from labyard.errors import InvalidInput, NotFound

MAX_COMPONENT = 200  # characters of one file or folder name
MAX_DEPTH = 64
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_relative(path: str) -> list[str]:
    """The components of a user path ('' and '/' are the root); '..' or NUL is NotFound."""
    if "\x00" in path or "\\" in path:
        raise NotFound("No such file or folder.")
    parts = [p for p in path.strip("/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts) or len(parts) > MAX_DEPTH:
        raise NotFound("No such file or folder.")
    return parts


def is_inside(path: Path, root: Path) -> bool:
    """True when `path` is `root` or below it (both taken as already resolved)."""
    return path == root or path.is_relative_to(root)


def safe_root(root: Path, *, within: Path | None = None) -> Path:
    """The real path of `root`, NotFound when it is a link or resolves outside `within`."""
    if root.is_symlink():
        raise NotFound("No such file or folder.")
    real = root.resolve()
    if within is not None and not is_inside(real, within.resolve()):
        raise NotFound("No such file or folder.")
    return real


def resolve_existing(root: Path, path: str) -> Path:
    """The existing file or folder `path` inside `root`, symlinks resolved, else NotFound."""
    parts = split_relative(path)
    real_root = root.resolve()
    try:
        target = real_root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound("No such file or folder.") from None
    if not is_inside(target, real_root):
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
        if not is_inside(current, real_root):
            raise NotFound("No such folder.")
    return current


def relative(root: Path, target: Path) -> str:
    """`target` as a path relative to `root` ('' for the root itself)."""
    rel = target.relative_to(root.resolve())
    return "" if str(rel) == "." else rel.as_posix()


def shown(root: Path, target: Path | str) -> str:
    """How a message names `target`: relative to `root`, never an absolute server path."""
    path = Path(target)
    for base in (root, root.resolve()):
        if path == base or path.is_relative_to(base):
            rel = path.relative_to(base).as_posix()
            return "the folder itself" if rel == "." else rel
    return path.name or "a file"


def os_error_message(exc: OSError, root: Path) -> str:
    """An OSError as a message naming its file relative to `root`."""
    reason = exc.strerror or type(exc).__name__
    return f"{reason} ({shown(root, exc.filename)})" if exc.filename else reason


# ---------------------------------------------------------------- walking, links not followed


def walk_files(folder: Path) -> Iterator[Path]:
    """Every regular file under `folder`, sorted; links (to files or folders) are skipped."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):
                yield path


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
        except (FileNotFoundError, NotADirectoryError):
            continue
    return total, count


def is_real_dir(path: Path) -> bool:
    """True for a folder that is not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def links_leaving(root: Path, tree: Path, *, moved_to: Path | None = None) -> list[str]:
    """Links under `tree` (or `tree` itself) that point outside `root` — read where they would
    be if `tree` were moved to `moved_to` — as paths relative to `root`, sorted."""
    real_root = root.resolve()
    place = moved_to if moved_to is not None else tree.parent.resolve() / tree.name
    found: list[str] = []
    candidates = [tree] if tree.is_symlink() else []
    for dirpath, dirnames, filenames in [] if candidates else os.walk(tree, followlinks=False):
        for name in dirnames + filenames:
            if (Path(dirpath) / name).is_symlink():
                candidates.append(Path(dirpath) / name)
    for link in candidates:
        target = os.readlink(link)
        where = place / link.relative_to(tree) if link != tree else place
        pointed = Path(posixpath.normpath(posixpath.join(str(where.parent), target)))
        leaves = not is_inside(pointed, real_root)
        if moved_to is None and not leaves:  # a chain of links may still lead out
            leaves = not is_inside(link.resolve(), real_root)
        if leaves:
            found.append(relative(real_root, link.parent.resolve() / link.name))
    return sorted(found)


def check_move(root: Path, source: Path, target: Path, *, field: str = "to") -> None:
    """Refuse a move that would make a link inside `source` point outside `root`."""
    leaving = links_leaving(root, source, moved_to=target)
    if leaving:
        names = ", ".join(repr(p) for p in leaving[:5])
        raise InvalidInput(
            f"This move would make links point outside the folder: {names}. "
            "Move them separately or remove them first.",
            field=field,
        )


def check_tree(root: Path) -> None:
    """Refuse a tree (e.g. a log dir handed to another program) holding a link that leads
    outside it; InvalidInput naming the link relative to `root`."""
    leaving = links_leaving(root, root)
    if leaving:
        names = ", ".join(repr(p) for p in leaving[:5])
        raise InvalidInput(f"Links leading outside the folder are not followed: {names}.")


def open_nofollow(path: Path) -> BinaryIO:
    """Open a file for reading, refusing (OSError) when it is a link."""
    return os.fdopen(os.open(path, READ_FLAGS), "rb")


def read_inside(root: Path, path: str, limit: int) -> bytes | None:
    """At most `limit` bytes of the file `path` inside `root` (a tree someone else writes);
    None when it is missing, a link, or resolves outside the root."""
    try:
        target = resolve_existing(safe_root(root), path)
        if not target.is_file():
            return None
        with open_nofollow(target) as fh:  # swapped for a link since: refused
            return fh.read(limit)
    except (NotFound, OSError):
        return None
