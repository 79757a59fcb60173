"""A lab's code files: list, read, write, upload, new folder, rename, delete.

Paths are relative to the lab's folder; `labyard.paths` resolves them and refuses anything
that leaves the folder (a lab's terminal can make links, so they are never followed out).
Writes go to a temporary file first and replace the target in one step. A write to the
lab's `mlsteam.yml` must parse (the same validator as the Config tab).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from labyard.config import Settings
from labyard.datasets.files import Entry, list_folder
from labyard.errors import Conflict, InvalidInput, NotFound, TooLarge
from labyard.labs.models import Lab
from labyard.labs.service import lab_dir
from labyard.mlsteam import CONFIG_FILE, LabConfig, parse_mlsteam
from labyard.paths import (
    check_move,
    clean_relative,
    open_nofollow,
    relative,
    resolve_existing,
    split_relative,
)

CHUNK = 1024 * 1024


def lab_root(settings: Settings, lab: Lab) -> Path:
    """The lab's folder (NotFound when it has gone missing on disk)."""
    root = lab_dir(settings, lab.id)
    if not root.is_dir() or root.is_symlink():
        raise NotFound("The lab's files are missing on disk.")
    return root


def list_files(settings: Settings, lab: Lab, path: str = "") -> tuple[str, list[Entry]]:
    """The folder `path` (relative, '' = the lab's root) and its entries."""
    root = lab_root(settings, lab)
    folder = resolve_existing(root, path)
    if not folder.is_dir():
        raise NotFound("No such folder.")
    return relative(root, folder), list_folder(root, folder)


def read_text(settings: Settings, lab: Lab, path: str) -> str:
    """The text of a file for the editor; binary or too-large files are refused."""
    target = resolve_existing(lab_root(settings, lab), path)
    if not target.is_file():
        raise NotFound("No such file.")
    if target.stat().st_size > settings.lab_max_edit_bytes:
        raise TooLarge(_too_large(settings))
    with open_nofollow(target) as fh:
        data = fh.read(settings.lab_max_edit_bytes + 1)
    if b"\x00" in data:
        raise InvalidInput("This is a binary file; it cannot be edited as text.", field="path")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("This file is not UTF-8 text.", field="path") from None


def _target(root: Path, path: str) -> tuple[Path, str]:
    """Where `path` (cleaned) lands inside `root`, and its relative spelling."""
    parts = clean_relative(path)
    parent = root
    for part in parts[:-1]:
        parent = parent / part
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            raise InvalidInput(f"{'/'.join(parts[:-1])!r} is not a folder.", field="path")
    target = parent / parts[-1]
    if target.is_symlink() or target.is_dir():
        raise InvalidInput(f"{'/'.join(parts)!r} is a folder.", field="path")
    return target, "/".join(parts)


def _check_config(rel: str, content: bytes) -> None:
    """A lab's root mlsteam.yml must parse before it is written."""
    if rel == CONFIG_FILE:
        parse_mlsteam(content.decode("utf-8", errors="replace"))


def _write_atomic(target: Path, source: BinaryIO, limit: int) -> int:
    """Copy `source` to `target` through a temporary file; TooLarge past `limit` bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise TooLarge(f"Files may be at most {limit // (1024 * 1024)} MiB here.")
                out.write(chunk)
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return written


def write_text(settings: Settings, lab: Lab, path: str, content: str) -> str:
    """Create or overwrite a text file (parent folders created); its relative path."""
    root = lab_root(settings, lab)
    target, rel = _target(root, path)
    data = content.encode("utf-8")
    if len(data) > settings.lab_max_edit_bytes:
        raise TooLarge(_too_large(settings))
    _check_config(rel, data)
    _write_atomic(target, io.BytesIO(data), settings.lab_max_edit_bytes)
    return rel


def create_file(settings: Settings, lab: Lab, path: str) -> str:
    """Create an empty file; Conflict when something is already there."""
    target, rel = _target(lab_root(settings, lab), path)
    if target.exists():
        raise Conflict(f"{rel!r} already exists.", field="name")
    return write_text(settings, lab, rel, "")


def upload(settings: Settings, lab: Lab, path: str, filename: str, stream: BinaryIO) -> str:
    """Store an uploaded file; `path` is its relative path, or a folder ('' or ending in '/')
    to put `filename` in. Returns where it went."""
    root = lab_root(settings, lab)
    if not path.strip() or path.endswith("/") or (root / path.strip("/")).is_dir():
        path = f"{path.rstrip('/')}/{filename}" if path.strip("/") else filename
    target, rel = _target(root, path)
    if rel == CONFIG_FILE:
        head = stream.read(settings.lab_max_edit_bytes + 1)
        if len(head) > settings.lab_max_edit_bytes:
            raise TooLarge("mlsteam.yml is too large.")
        _check_config(rel, head)
        stream = io.BytesIO(head)
    _write_atomic(target, stream, settings.lab_max_upload_bytes)
    return rel


def make_folder(settings: Settings, lab: Lab, path: str) -> str:
    """Create a folder (and missing parents); Conflict when something is already there."""
    root = lab_root(settings, lab)
    parts = clean_relative(path)
    target = root.joinpath(*parts)
    if target.exists() or target.is_symlink():
        raise Conflict(f"{'/'.join(parts)!r} already exists.", field="path")
    _target(root, "/".join(parts))  # parents must be folders
    target.mkdir(parents=True)
    return "/".join(parts)


def rename(settings: Settings, lab: Lab, path: str, new_path: str) -> str:
    """Move or rename a file or folder inside the lab; Conflict when the target exists."""
    root = lab_root(settings, lab)
    source = resolve_existing(root, path)
    if source == root.resolve():
        raise InvalidInput("The lab's root folder cannot be renamed.", field="path")
    parts = clean_relative(new_path, field="new_path")
    target = root.joinpath(*parts)
    if target.exists() or target.is_symlink():
        raise Conflict(f"{'/'.join(parts)!r} already exists.", field="new_path")
    if source.is_dir() and target.resolve().is_relative_to(source):
        raise InvalidInput("A folder cannot be moved into itself.", field="new_path")
    if "/".join(parts) == CONFIG_FILE and source.is_file():
        with open_nofollow(source) as fh:
            _check_config(CONFIG_FILE, fh.read(settings.lab_max_edit_bytes + 1))
    _target(root, "/".join(parts))
    check_move(root, source, target, field="new_path")
    target.parent.mkdir(parents=True, exist_ok=True)
    source.rename(target)
    return "/".join(parts)


def delete(settings: Settings, lab: Lab, path: str) -> None:
    """Delete a file or a folder with everything in it (not the lab's root)."""
    root = lab_root(settings, lab)
    if not split_relative(path):
        raise InvalidInput("The lab's root folder cannot be deleted.", field="path")
    target = resolve_existing(root, path)
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()


def read_config(settings: Settings, lab: Lab) -> LabConfig:
    """The lab's parsed mlsteam.yml (MlsteamError with a line when it is wrong)."""
    target = lab_root(settings, lab) / CONFIG_FILE
    if not target.is_file():
        raise InvalidInput("This lab has no mlsteam.yml; write one in the Config tab.")
    return parse_mlsteam(read_text(settings, lab, CONFIG_FILE))


def _too_large(settings: Settings) -> str:
    return f"Files over {settings.lab_max_edit_bytes // 1024} KiB are not editable here."
