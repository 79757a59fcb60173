"""Start-up work shared by `labyard serve`, `labyard migrate` and the tests: migrate, seed."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from sqlalchemy import select

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets.service import seed_sample_datasets
from labyard.db import Database
from labyard.flavors.service import seed_default_flavors
from labyard.resources import resource_dir

ADMIN_USERNAME = "admin"
PRIVATE_UMASK = 0o077  # files 0600, folders 0700: the server's files are nobody else's


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for `database_url`, with the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(resource_dir("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(settings: Settings) -> None:
    """Bring the database schema to the newest migration."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url), "head")


@dataclass(frozen=True)
class SeedResult:
    """What seeding created: the admin's generated password is shown once, then forgotten."""

    admin_created: bool
    admin_password: str | None  # only when generated (not from LABYARD_ADMIN_PASSWORD)


def seed(settings: Settings, database: Database) -> SeedResult:
    """First start: the admin, default flavors, the public sample datasets (each when missing)."""
    from labyard.app import wire_hooks  # the admin's default project comes through a hook

    wire_hooks()
    with database.session() as db:
        seed_default_flavors(db)
        seed_sample_datasets(db, settings)
        # users made with `labyard user create` before the first serve do not count: the
        # platform still needs someone who can reach /admin
        has_admin = select(User.id).where(
            User.is_admin.is_(True) | (User.username == ADMIN_USERNAME)
        )
        if db.scalar(has_admin.limit(1)) is not None:
            return SeedResult(False, None)
        password = settings.admin_password or secrets.token_urlsafe(12)
        auth_service.create_user(db, username=ADMIN_USERNAME, password=password, is_admin=True)
    return SeedResult(True, None if settings.admin_password else password)


def make_private(settings: Settings) -> None:
    """Make what the server creates from now on unreadable to others (umask 077), and take
    group and others' read and write away from the data folder and the SQLite files an
    earlier `labyard migrate` may have made (others keep only the right to enter folders,
    which local job isolation grants)."""
    os.umask(PRIVATE_UMASK)
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    database = data / "labyard.db"
    for path in (data, database, database.with_name("labyard.db-wal"),
                 database.with_name("labyard.db-shm")):  # fmt: skip
        if path.exists() and not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o066)


def prepare(settings: Settings, database: Database) -> SeedResult:
    """Make new files private, migrate, then seed (what `labyard serve` runs first)."""
    make_private(settings)
    migrate(settings)
    return seed(settings, database)
