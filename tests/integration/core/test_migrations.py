"""Migrations: they agree with the models, they go down and up again, their files are dated."""

from __future__ import annotations

import re

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

import labyard.db.models  # noqa: F401 - registers every table
from labyard.bootstrap import alembic_config
from labyard.db import Base
from labyard.resources import resource_dir

DATED = re.compile(r"^\d{8}_[0-9a-z]+_[0-9a-z_]+\.py$")


def _differences(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": False}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    assert _differences(db_url) == []


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    config = alembic_config(db_url)
    expected = set(Base.metadata.tables) | {"alembic_version"}
    assert _tables(db_url) == expected
    command.downgrade(config, "base")
    assert _tables(db_url) <= {"alembic_version"}
    command.upgrade(config, "head")
    assert _tables(db_url) == expected
    assert _differences(db_url) == []


def test_migration_files_are_dated_and_form_one_chain() -> None:
    versions = resource_dir("migrations") / "versions"
    names = sorted(p.name for p in versions.glob("*.py"))
    assert names, "no migrations"
    undated = [n for n in names if not DATED.match(n)]
    assert not undated, f"migration file names must be YYYYMMDD_<rev>_<slug>.py: {undated}"
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, "migrations must form one linear chain"
    for revision in script.walk_revisions():
        assert revision.path is not None and revision.revision in revision.path
