"""The backup manifest: what a backup holds, written last and checked before a restore."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "labyard-backup"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
FILES_DIR = "files"
DUMP_NAMES = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why (and nothing was written
    when a restore refuses)."""


@dataclass(frozen=True)
class FileStats:
    """What a copied tree held: regular files, their bytes, symbolic links, and what was
    left out (special files, files gone while copying, folders of rows newer than the
    database snapshot)."""

    count: int = 0
    bytes: int = 0
    links: int = 0
    special_skipped: int = 0
    vanished: int = 0
    newer_than_snapshot: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Manifest:
    """The contents of manifest.json."""

    labyard_version: str
    created_at: str
    schema_revision: str
    database_kind: str
    database_file: str
    database_sha256: str
    database_bytes: int
    data_dir: str
    files: FileStats
    format: str = FORMAT
    version: int = FORMAT_VERSION

    def write(self, folder: Path) -> None:
        """Write the manifest into `folder` atomically (a temporary file renamed)."""
        tmp = folder / f".{MANIFEST_NAME}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, folder / MANIFEST_NAME)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the backup in `folder`; BackupError when it is missing or unreadable."""
    path = folder / MANIFEST_NAME
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a folder")
    if not path.is_file():
        raise BackupError(
            f"{folder} has no {MANIFEST_NAME}: the backup is incomplete (the manifest is written "
            "last) or this is not a Labyard backup"
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise BackupError(f"{path} is not a Labyard backup manifest")
        if data.get("version") != FORMAT_VERSION:
            raise BackupError(
                f"{path} has backup format version {data.get('version')!r}; this Labyard "
                f"reads version {FORMAT_VERSION}"
            )
        files = FileStats(**data.pop("files"))
        return Manifest(files=files, **data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BackupError(f"{path} is damaged: {exc}") from None


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
