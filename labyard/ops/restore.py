"""`labyard restore DIR`: bring a backup back into an empty data folder and database.

Everything is checked before anything is written: the manifest (present, readable, this
format), the database dump's SHA-256, the file count and bytes of `files/`, that the
database kinds match and that this Labyard knows the backup's schema revision, and that
the target data folder and database are empty (unless `force`). Then the database is
loaded, the files are copied back with their modes (the data folder private, umask 077),
links into the old data folder are pointed at the new one, migrations bring an older
schema to the newest, and the result is checked against the manifest again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from labyard.bootstrap import alembic_config, make_private, migrate
from labyard.config import Settings
from labyard.ops.database import (
    VERSION_TABLE,
    clear_database,
    database_kind,
    load_database,
    sqlite_file,
    tables_with_rows,
)
from labyard.ops.manifest import FILES_DIR, BackupError, Manifest, read_manifest, sha256_of
from labyard.ops.tree import SQLITE_SUFFIXES, copy_tree, measure_tree


def verify_backup(source: Path, url: str) -> Manifest:
    """The manifest of the backup in `source` once every check passes (BackupError naming
    the first that fails); reads the backup only."""
    manifest = read_manifest(source)
    kind = database_kind(url)
    if manifest.database_kind != kind:
        raise BackupError(
            f"the backup holds a {manifest.database_kind} database and the target is {kind}; "
            "restore into the same kind of database"
        )
    dump = source / manifest.database_file
    if dump.name != manifest.database_file or not dump.is_file():
        raise BackupError(f"the database dump {manifest.database_file} is missing from {source}")
    if sha256_of(dump) != manifest.database_sha256:
        raise BackupError(f"{dump} does not match the manifest's SHA-256: it is damaged")
    found = measure_tree(source / FILES_DIR) if (source / FILES_DIR).is_dir() else None
    wanted = (manifest.files.count, manifest.files.bytes)
    if found is None or (found.count, found.bytes) != wanted:
        have = "no files folder" if found is None else f"{found.count} files, {found.bytes} bytes"
        raise BackupError(
            f"{source / FILES_DIR} holds {have}; the manifest says {wanted[0]} files, "
            f"{wanted[1]} bytes: the backup is incomplete or damaged"
        )
    try:
        ScriptDirectory.from_config(alembic_config(url)).get_revision(manifest.schema_revision)
    except CommandError:
        raise BackupError(
            f"the backup's schema revision {manifest.schema_revision!r} is unknown to this "
            "Labyard (a newer release made it); restore with that release or a later one"
        ) from None
    return manifest


def _data_dir_entries(settings: Settings) -> list[str]:
    """What the data folder holds besides the SQLite database files."""
    folder = settings.data_dir
    if not folder.is_dir():
        return []
    ignored: set[Path] = set()
    if database_kind(settings.resolved_database_url) == "sqlite":
        path = sqlite_file(settings.resolved_database_url)
        ignored = {path.with_name(path.name + suffix) for suffix in SQLITE_SUFFIXES}
    return sorted(entry.name for entry in folder.iterdir() if entry.resolve() not in ignored)


def check_target(settings: Settings, *, force: bool) -> None:
    """Refuse a data folder or database that holds anything, unless `force`."""
    busy = []
    entries = _data_dir_entries(settings)
    if entries:
        busy.append(f"the data folder {settings.data_dir} holds {', '.join(entries[:5])}")
    tables = tables_with_rows(settings.resolved_database_url)
    if tables:
        busy.append(f"the database has rows in {', '.join(tables[:5])}")
    if busy and not force:
        raise BackupError(
            "; ".join(busy) + ". Restore into an empty data folder and database, or give "
            "--force to replace what is there"
        )


def _clear_data_dir(settings: Settings) -> None:
    """Remove the data folder's contents (`--force`)."""
    if settings.data_dir.is_dir():
        for entry in settings.data_dir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def relinker(old: str, new: Path) -> Callable[[str], str]:
    """Map a link target inside the old data folder `old` to the same place in `new` (job
    folders link their datasets by absolute path); other targets stay as they are."""

    def relink(target: str) -> str:
        if os.path.isabs(target) and (target == old or target.startswith(old.rstrip("/") + "/")):
            return str(new) + target[len(old.rstrip("/")) :]
        return target

    return relink


def _revision(url: str) -> str:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}")))
    finally:
        engine.dispose()


def restore(settings: Settings, source: Path, *, force: bool = False) -> Manifest:
    """Restore the backup in `source` into the installation of `settings`; the manifest."""
    source = source.expanduser().resolve()
    url = settings.resolved_database_url
    manifest = verify_backup(source, url)
    check_target(settings, force=force)
    if force:
        _clear_data_dir(settings)
    clear_database(url)  # empty of rows (or forced): a migrated schema or stale WAL goes
    make_private(settings)
    load_database(url, source / manifest.database_file)
    files = copy_tree(
        source / FILES_DIR, settings.data_dir, relink=relinker(manifest.data_dir, settings.data_dir)
    )
    if (files.count, files.bytes) != (manifest.files.count, manifest.files.bytes):
        raise BackupError(
            f"restored {files.count} files ({files.bytes} bytes); the manifest says "
            f"{manifest.files.count} ({manifest.files.bytes} bytes)"
        )
    migrate(settings)
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if _revision(url) != head:
        raise BackupError(f"the restored database is not at the newest schema {head}")
    return manifest
