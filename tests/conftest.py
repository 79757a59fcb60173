"""Shared fixtures: an isolated real database per test (SQLite file, or PostgreSQL when
LABYARD_TEST_DATABASE=postgres), settings, the app, and clients for pages and the API."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from labyard.app import create_app
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database
from tests import services
from tests.factories import ADMIN_PASSWORD, WebClient

TEST_SECRET = "test-secret-key-for-labyard-tests-0123456789"
USE_POSTGRES = os.environ.get("LABYARD_TEST_DATABASE", "sqlite") == "postgres"
_counter = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that touch no database, so the PostgreSQL pass can leave them out."""
    for item in items:
        if "db_url" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.nodb)


def _settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key=TEST_SECRET,
        start_scheduler=False,
        admin_password=ADMIN_PASSWORD,
    )


@pytest.fixture(scope="session")
def _template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database that every test's database is copied from."""
    if USE_POSTGRES:
        server = services.require(services.postgres_url)
        name = f"labyard_tpl_{os.getpid()}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        migrate(_settings_for(url, tmp_path_factory.mktemp("pgtpl")))
        yield url
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        folder = tmp_path_factory.mktemp("sqlite-template")
        url = f"sqlite:///{folder / 'template.db'}"
        migrate(_settings_for(url, folder))
        yield url


@pytest.fixture
def db_url(_template_database: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database for this test only."""
    if USE_POSTGRES:
        template = make_url(_template_database)
        name = f"labyard_t_{os.getpid()}_{next(_counter)}"
        admin = create_engine(template.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"'))
        yield template.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        source = Path(make_url(_template_database).database or "")
        target = tmp_path / "labyard.db"
        shutil.copyfile(source, target)
        yield f"sqlite:///{target}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's database and data folder."""
    return _settings_for(db_url, tmp_path / "data")


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    """The test's database, seeded like a first start (admin, flavors)."""
    database = Database(settings.resolved_database_url)
    seed(settings, database)
    yield database
    database.dispose()


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    """The application under test."""
    return create_app(settings, database=database)


@pytest.fixture
def web(app: FastAPI) -> Iterator[WebClient]:
    """A browser-like client (cookies, CSRF tokens); not logged in."""
    with WebClient(app) as client:
        yield client


@pytest.fixture
def admin_web(app: FastAPI) -> Iterator[WebClient]:
    """A browser-like client logged in as the seeded admin."""
    with WebClient(app) as client:
        client.login("admin", ADMIN_PASSWORD)
        yield client
