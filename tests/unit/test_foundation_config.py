"""Settings: LABYARD_* variables, the generated secret key, the database URL."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from labyard.config import SECRET_FILE, Settings


def test_secret_key_is_generated_private_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "data").resolved_secret_key
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert Settings(data_dir=tmp_path / "data").resolved_secret_key == first
    assert [p.name for p in path.parent.iterdir()] == [SECRET_FILE]  # no temporary left


def test_explicit_secret_key_wins_and_weak_ones_are_refused(tmp_path: Path) -> None:
    key = "k" * 40
    assert Settings(data_dir=tmp_path, secret_key=key).resolved_secret_key == key
    assert not (tmp_path / SECRET_FILE).exists()
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(data_dir=tmp_path, secret_key="short")


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABYARD_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("LABYARD_PORT", "9123")
    monkeypatch.setenv("LABYARD_LOGIN_MAX_FAILURES", "7")
    settings = Settings()
    assert settings.data_dir == (tmp_path / "d").resolve()
    assert settings.port == 9123 and settings.login_max_failures == 7
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'd').resolve()}/labyard.db"


def test_every_setting_is_described() -> None:
    missing = [name for name, f in Settings.model_fields.items() if not f.description]
    assert not missing
