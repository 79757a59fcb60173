"""Engines and sessions: SQLite tuned for concurrent writers, PostgreSQL as it comes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from labyard.db.base import NulInText, NumberOutOfRange

INT64 = 2**63

SQLITE_BUSY_TIMEOUT_MS = 30_000


READ_ONLY_OPTION = "labyard_read_only"


def _tune_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE so writers queue instead of failing.

    pysqlite's default deferred transactions let two readers both try to upgrade to writers,
    and one then fails at once with "database is locked" whatever the busy timeout; taking the
    write lock at BEGIN makes the busy timeout apply (SQLAlchemy's documented recipe).
    Read-only sessions (Database.read_session, GET requests) begin deferred instead: under WAL
    they never block writers, and pollers no longer queue for the write lock.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _refuse_writes(session: Session, _context: Any, _instances: Any) -> None:
    """A read session that writes would fail at random under load on SQLite (its deferred
    transaction cannot take the write lock once another writer committed): fail every time."""
    dirty = [obj for obj in session.dirty if session.is_modified(obj)]
    if session.new or dirty or session.deleted:
        changed = [type(obj).__name__ for obj in (*session.new, *dirty, *session.deleted)]
        raise RuntimeError(f"a read-only session (GET/HEAD) tried to write: {changed}")


def is_read_session(session: Session) -> bool:
    """True for sessions made by Database.read_sessionmaker (deferred, read-only by intent)."""
    return bool(session.get_bind().get_execution_options().get(READ_ONLY_OPTION, False))


@contextmanager
def write_beside(session: Session) -> Iterator[Session]:
    """A short write transaction of its own on `session`'s database, committed at exit: for
    the rare write a read session's request must make (state found while reading)."""
    bind = session.get_bind().execution_options(**{READ_ONLY_OPTION: False})
    with Session(bind, expire_on_commit=False) as other, other.begin():
        yield other


def _refuse_unstorable(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, executemany: bool
) -> None:
    """Values no database statement can take are the user's error (422), checked once for
    every value any route sends: text with NUL (PostgreSQL refuses it anywhere: a token name,
    a description, a login's username answered 500) and integers past 64 bits (an OFFSET from
    `?page=99999999999999999999`; typed INTEGER columns are narrower, see CheckedInteger)."""
    for row in parameters if executemany else (parameters,):
        values: Iterable[Any]
        if isinstance(row, dict):
            values = row.values()
        else:
            values = row if isinstance(row, list | tuple) else (row,)
        for value in values:
            if isinstance(value, str) and "\x00" in value:
                raise NulInText()
            if isinstance(value, int) and not -INT64 <= value < INT64:
                raise NumberOutOfRange(value)


def make_engine(url: str) -> Engine:
    """Create the engine for `url` with Labyard's connection settings."""
    engine = _make_engine(url)
    event.listen(engine, "before_cursor_execute", _refuse_unstorable)
    return engine


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=20,
            max_overflow=20,
        )
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """The engine and the session factory of one Labyard instance."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )
        event.listen(self.read_sessionmaker, "before_flush", _refuse_writes)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reading only: it never takes SQLite's write lock, and rolls back."""
        with self.read_sessionmaker() as session:
            try:
                yield session
            finally:
                session.rollback()

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health check reports any failure
            return False

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
