"""Shared fixtures: an isolated real database per test (SQLite file, or PostgreSQL when
LABYARD_TEST_DATABASE=postgres), settings, the app, and clients for pages and the API."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
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

REPO = Path(__file__).resolve().parents[1]
TEST_SECRET = "test-secret-key-for-labyard-tests-0123456789"
USE_POSTGRES = os.environ.get("LABYARD_TEST_DATABASE", "sqlite") == "postgres"
_counter = itertools.count()
# Jobs in tests run this repository's interpreter from temporary folders that only root can
# enter, so the job user is off unless a test names one (tests/integration/jobs/
# test_job_isolation.py); the subprocess servers tests start inherit this.
os.environ.setdefault("LABYARD_JOB_USER", "")


# Tests whose database is incidental: they drive a browser, JupyterLab or TensorBoard
# processes, a Slurm cluster, Docker containers, servers killed and restarted, the CLI
# over HTTP, or template training and inference through the same database layer (and the
# same pages' queries) that the integration tests cover on both databases. They run once,
# in the SQLite pass (scripts/test), to keep CI within its time.
ONE_PASS = (
    "tests/e2e/",
    "tests/integration/sessions/",
    "tests/integration/slurm/",
    "tests/integration/labs/test_template_jobs.py",
    "tests/integration/labs/test_template_preemption.py",
    "tests/integration/tensorboard/",
    "tests/integration/weights/test_fine_tune.py",
    "tests/integration/weights/test_inference.py",
    "tests/integration/weights/test_inference_uploads.py",
    "tests/integration/weights/test_weights_mounts.py",
    "tests/integration/jobs/test_output_dataset_auto.py",
    "tests/integration/deephealth/test_walkthrough.py",
    "tests/integration/jobs/test_docker_jobs.py",
    "tests/integration/jobs/test_docker_uid.py",
    "tests/integration/jobs/test_restart.py",
    "tests/integration/searches/test_search_restart.py",
    "tests/integration/cli/",
    "tests/template/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that touch no database, and those whose database is incidental, so the
    PostgreSQL pass can leave them out."""
    for item in items:
        if "db_url" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.nodb)
        where = Path(str(item.fspath)).resolve().relative_to(REPO).as_posix()
        if where.startswith(ONE_PASS):
            item.add_marker(pytest.mark.sqlite_pass)


def _settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key=TEST_SECRET,
        start_scheduler=False,
        admin_password=ADMIN_PASSWORD,
    )


@dataclass(frozen=True)
class _Templates:
    """Databases every test's database is copied from: migrated, and migrated + seeded."""

    empty_url: str
    seeded_url: str
    seeded_data_dir: Path


def _pg_create(server: str, name: str, template: str | None = None) -> str:
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    engine.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def _pg_drop(server: str, *names: str) -> None:
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    """Migrate once and seed once (admin, flavors, digits) for the whole session."""
    seeded_dir = tmp_path_factory.mktemp("seeded-data")
    if USE_POSTGRES:
        server = services.require(services.postgres_url)
        empty, seeded = f"labyard_tpl_{os.getpid()}", f"labyard_tpls_{os.getpid()}"
        empty_url = _pg_create(server, empty)
        migrate(_settings_for(empty_url, tmp_path_factory.mktemp("pgtpl")))
        seeded_url = _pg_create(server, seeded, template=empty)
    else:
        folder = tmp_path_factory.mktemp("sqlite-template")
        empty_url = f"sqlite:///{folder / 'template.db'}"
        migrate(_settings_for(empty_url, folder))
        shutil.copyfile(folder / "template.db", folder / "seeded.db")
        seeded_url = f"sqlite:///{folder / 'seeded.db'}"
    database = Database(seeded_url)
    seed(_settings_for(seeded_url, seeded_dir), database)
    database.dispose()
    yield _Templates(empty_url, seeded_url, seeded_dir)
    if USE_POSTGRES:
        _pg_drop(server, seeded, empty)


@pytest.fixture
def db_url(_templates: _Templates, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database for this test only: migrated and empty, or, for tests that use the
    `database` fixture, also seeded like a first start."""
    seeded = "database" in request.fixturenames
    source = _templates.seeded_url if seeded else _templates.empty_url
    if USE_POSTGRES:
        template = make_url(source)
        server = template.set(database="postgres").render_as_string(hide_password=False)
        name = f"labyard_t_{os.getpid()}_{next(_counter)}"
        yield _pg_create(server, name, template=template.database)
        _pg_drop(server, name)
    else:
        target = tmp_path / "labyard.db"
        shutil.copyfile(make_url(source).database or "", target)
        yield f"sqlite:///{target}"


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at this test's database and data folder."""
    return _settings_for(db_url, tmp_path / "data")


@pytest.fixture
def database(settings: Settings, _templates: _Templates) -> Iterator[Database]:
    """The test's database, seeded like a first start (admin, flavors, the digits dataset).

    Seeding ran once into a template; the database was copied from it (see db_url) and the
    seeded files are hard-linked here, which costs milliseconds instead of an argon2 hash and
    1,797 PNG files per test.
    """
    shutil.copytree(
        _templates.seeded_data_dir, settings.data_dir, copy_function=os.link, dirs_exist_ok=True
    )
    database = Database(settings.resolved_database_url)
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
