"""All of Labyard's settings: one pydantic-settings class read from LABYARD_* variables."""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FILE = "secret_key"


class Settings(BaseSettings):
    """Labyard's configuration; every field is also the variable LABYARD_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="LABYARD_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("labyard")),
        description="Where the database file, datasets, labs, job files and logs live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means a SQLite file `labyard.db` in the data dir.",
    )
    secret_key: str = Field(
        default="",
        description="Signs session cookies; empty means generated once and kept in the data dir.",
    )
    executor: Literal["local", "docker"] = Field(
        default="local", description="Where jobs run: local processes or Docker containers."
    )
    admin_password: str = Field(
        default="", description="Password of the first admin on first start (else generated)."
    )
    host: str = Field(default="127.0.0.1", description="Address `labyard serve` listens on.")
    port: int = Field(default=8000, description="Port `labyard serve` listens on.")
    session_hours: int = Field(default=12, description="Lifetime of a login session.")
    access_token_minutes: int = Field(default=60, description="Lifetime of an OAuth2 token.")
    refresh_token_days: int = Field(default=30, description="Lifetime of a refresh token.")
    login_max_failures: int = Field(
        default=5, description="Failed logins for one account within the window before throttling."
    )
    login_max_failures_per_address: int = Field(
        default=20, description="Failed logins from one address within the window."
    )
    login_window_seconds: int = Field(default=900, description="Throttling window for logins.")
    secure_cookies: bool = Field(
        default=False, description="Mark cookies Secure (set true behind HTTPS)."
    )
    dev_mode: bool = Field(
        default=False, description="Development mode: allows an explicit weak secret key."
    )
    start_scheduler: bool = Field(
        default=True, description="Run the job scheduler inside `labyard serve`."
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("LABYARD_SECRET_KEY must be at least 32 characters (or left unset)")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL in use: the setting, else the SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'labyard.db'}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """The secret key: the setting, else one generated on first use and kept in the data dir."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_FILE
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(8)}")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # atomic: the first process to start wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text().strip()
