"""`labyard backup DIR`: a consistent copy of the database and the data folder while jobs
run.

Order: the database snapshot first, then the files, then the manifest (last, so a folder
without one is an incomplete backup). Files are copied after the snapshot, so each is at
least as new as the rows that describe it: a job's log and metrics that grew meanwhile hold
more lines than the snapshot ingested, and the restored server reads the rest when it
finishes the job (it reads logs from the offset its row records). Folders of rows created
after the snapshot are left out (labyard.ops.tree).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from labyard import __version__
from labyard.config import Settings
from labyard.ops.database import database_kind, snapshot_database, sqlite_file
from labyard.ops.manifest import DUMP_NAMES, FILES_DIR, BackupError, FileStats, Manifest, sha256_of
from labyard.ops.tree import backup_rules, copy_tree


def prepare_target(settings: Settings, target: Path) -> Path:
    """The backup folder, made private (0700); refused when it holds anything or lies in
    the data folder (the backup would copy itself)."""
    target = target.expanduser().resolve()
    if target.is_relative_to(settings.data_dir):
        raise BackupError(f"the backup folder {target} is inside the data folder")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} is not an empty folder; back up into a new one")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)
    return target


def backup(settings: Settings, target: Path, *, sync: bool = True) -> Manifest:
    """Back the installation of `settings` up into the new folder `target`; the manifest.
    `sync`: flush the copies to disk before the manifest is written (off only to measure
    copying alone)."""
    url = settings.resolved_database_url
    kind = database_kind(url)
    target = prepare_target(settings, target)
    dump = target / DUMP_NAMES[kind]
    snapshot = snapshot_database(url, dump)
    files = FileStats()
    if settings.data_dir.is_dir():
        database_file = sqlite_file(url) if kind == "sqlite" else None
        rules = backup_rules(settings.data_dir, database_file, snapshot.known_ids)
        files = copy_tree(settings.data_dir, target / FILES_DIR, rules)
    if sync:
        os.sync()  # the copies are on disk before the manifest says the backup is whole
    manifest = Manifest(
        labyard_version=__version__,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        schema_revision=snapshot.revision,
        database_kind=kind,
        database_file=dump.name,
        database_sha256=sha256_of(dump),
        database_bytes=dump.stat().st_size,
        data_dir=str(settings.data_dir),
        files=files,
    )
    manifest.write(target)
    return manifest


def describe(manifest: Manifest, target: Path) -> str:
    """One paragraph saying what a backup holds (for the command's output)."""
    files = manifest.files
    lines = [
        f"Backed up to {target}: {manifest.database_kind} database at revision "
        f"{manifest.schema_revision} ({manifest.database_bytes} bytes), "
        f"{files.count} files ({files.bytes} bytes), {files.links} links."
    ]
    if files.newer_than_snapshot:
        lines.append(
            "Left out, made after the database snapshot: " + ", ".join(files.newer_than_snapshot)
        )
    if files.vanished or files.special_skipped:
        lines.append(
            f"Gone while copying: {files.vanished}; sockets and other special files left "
            f"out: {files.special_skipped}."
        )
    return "\n".join(lines)
