"""What backup and restore refuse, with a message saying why, and that a refused restore
writes nothing; `--force` replaces an installation; the two commands over the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from labyard.auth.models import LoginFailure
from labyard.bootstrap import migrate
from labyard.config import Settings
from labyard.db import Database
from labyard.ops.backup import backup
from labyard.ops.manifest import FILES_DIR, MANIFEST_NAME, BackupError
from labyard.ops.restore import restore
from tests.conftest import TEST_SECRET
from tests.integration.cli.test_cli_admin import _labyard as run_labyard
from tests.integration.ops.conftest import table_rows


def _untouched(fresh: Settings) -> None:
    """The target installation is as it was: no data folder, no tables."""
    assert not fresh.data_dir.exists()
    url = fresh.resolved_database_url
    assert url.startswith("postgresql") or not Path(url.removeprefix("sqlite:///")).exists()
    if url.startswith("postgresql"):
        assert table_rows(url) == {}


def _flip_dump_byte(folder: Path) -> None:
    dump = next(folder.glob("database.*"))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))


def _drop_a_file(folder: Path) -> None:
    next(path for path in (folder / FILES_DIR).rglob("*.png")).unlink()


def _drop_manifest(folder: Path) -> None:
    (folder / MANIFEST_NAME).unlink()


def _garble_manifest(folder: Path) -> None:
    (folder / MANIFEST_NAME).write_text('{"format": "labyard-backup", "version": 1, ')


def _newer_schema(folder: Path) -> None:
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest | {"schema_revision": "ffff0000"}))


DAMAGE: list[tuple[Callable[[Path], None], str]] = [
    (_drop_manifest, "has no manifest.json: the backup is incomplete"),
    (_garble_manifest, "manifest.json is damaged"),
    (_flip_dump_byte, "does not match the manifest's SHA-256"),
    (_drop_a_file, "the backup is incomplete or damaged"),
    (_newer_schema, "schema revision 'ffff0000' is unknown to this Labyard"),
]


def test_restore_refuses_a_damaged_backup_and_writes_nothing(
    database: Database, settings: Settings, fresh: Settings, tmp_path: Path
) -> None:
    good = tmp_path / "good"
    backup(settings, good)
    for damage, message in DAMAGE:
        bad = tmp_path / damage.__name__
        shutil.copytree(
            good, bad, symlinks=True, ignore=lambda d, n: [FILES_DIR] if d == str(good) else []
        )
        shutil.copytree(good / FILES_DIR, bad / FILES_DIR, symlinks=True, copy_function=os.link)
        damage(bad)
        with pytest.raises(BackupError, match=message):
            restore(fresh, bad)
        _untouched(fresh)
    restore(fresh, good)
    assert table_rows(fresh.resolved_database_url) == table_rows(settings.resolved_database_url)


def test_restore_refuses_an_installation_in_use_unless_forced(
    database: Database, settings: Settings, fresh: Settings, tmp_path: Path
) -> None:
    backup(settings, tmp_path / "backup")
    fresh.data_dir.mkdir()
    (fresh.data_dir / "notes.txt").write_text("mine")
    with pytest.raises(BackupError, match=r"the data folder .* holds notes\.txt.*--force"):
        restore(fresh, tmp_path / "backup")
    assert [p.name for p in fresh.data_dir.iterdir()] == ["notes.txt"]
    (fresh.data_dir / "notes.txt").unlink()
    migrate(fresh)  # a migrated, empty database is no reason to refuse ...
    other = Database(fresh.resolved_database_url)
    with other.session() as db:  # ... one with rows is
        db.add(LoginFailure(key="addr:10.0.0.1", count=1))
    other.dispose()
    with pytest.raises(BackupError, match="the database has rows in login_failures"):
        restore(fresh, tmp_path / "backup")
    restore(fresh, tmp_path / "backup", force=True)
    assert table_rows(fresh.resolved_database_url) == table_rows(settings.resolved_database_url)


def test_restore_into_a_migrated_empty_database_needs_no_force(
    database: Database, settings: Settings, fresh: Settings, tmp_path: Path
) -> None:
    backup(settings, tmp_path / "backup")
    migrate(fresh)  # `labyard migrate` (or a first `serve`) ran before the restore
    restore(fresh, tmp_path / "backup")
    assert table_rows(fresh.resolved_database_url) == table_rows(settings.resolved_database_url)


def test_backup_refuses_a_folder_that_holds_anything_or_lies_in_the_data_folder(
    database: Database, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    with pytest.raises(BackupError, match="is not an empty folder"):
        backup(settings, tmp_path / "used")
    with pytest.raises(BackupError, match="is inside the data folder"):
        backup(settings, settings.data_dir / "backups")
    assert not (settings.data_dir / "backups").exists()


def _labyard(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`labyard ARGS` in a process of its own, on the installation of `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
    env |= {
        "LABYARD_DATA_DIR": str(settings.data_dir),
        "LABYARD_DATABASE_URL": settings.resolved_database_url,
        "LABYARD_SECRET_KEY": TEST_SECRET,
    }
    return run_labyard(env, *args)


def test_the_commands_back_up_and_restore_and_say_why_they_refuse(
    database: Database, settings: Settings, fresh: Settings, tmp_path: Path
) -> None:
    made = _labyard(settings, "backup", str(tmp_path / "backup"))
    assert made.returncode == 0, made.stderr
    assert f"Backed up to {tmp_path / 'backup'}" in made.stdout and "files" in made.stdout
    again = _labyard(settings, "backup", str(tmp_path / "backup"))
    assert again.returncode == 1 and "is not an empty folder" in again.stderr
    missing = _labyard(fresh, "restore", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "is not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr + again.stderr
    done = _labyard(fresh, "restore", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr
    assert "the database is at the newest schema" in done.stdout
    refused = _labyard(fresh, "restore", str(tmp_path / "backup"))
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert _labyard(fresh, "restore", "--force", str(tmp_path / "backup")).returncode == 0
