"""No command prints a secret: the database URL's password, the secret key, the admin password
set in the environment. Every command runs as a real subprocess and all it writes (stdout,
stderr, its logs) is searched; the URL is still shown, with the password masked."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

from labyard.db.urls import MASK, shown_url
from tests.serving import free_port

LABYARD = str(Path(sys.executable).with_name("labyard"))


def _secret() -> str:
    return "Sx" + secrets.token_hex(20)  # unlike anything a command prints by itself


SECRET_KEY = _secret()
ADMIN_PASSWORD = _secret()


def _env(data_dir: Path, url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
    env.update(
        LABYARD_DATA_DIR=str(data_dir),
        LABYARD_DATABASE_URL=url,
        LABYARD_SECRET_KEY=SECRET_KEY,
        LABYARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
        LABYARD_START_SCHEDULER="false",
    )
    env.update(extra)
    return env


def _run(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str]:
    done = subprocess.run(
        [LABYARD, *args],
        env=env,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout


def _run_until(env: dict[str, str], args: list[str], ready: str, port: int | None) -> str:
    """Start a long-running command, wait for `ready` in its output (and /healthz on `port`),
    stop it with SIGTERM; everything it printed."""
    proc = subprocess.Popen(
        [LABYARD, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        for line in proc.stdout:
            printed.append(line)
            if ready in line:
                break
        deadline = time.monotonic() + 60
        while port is not None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "".join(printed)
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    return "".join(printed) + rest


def _assert_no_secret(output: str, *hidden: str) -> None:
    for secret in (SECRET_KEY, ADMIN_PASSWORD, *hidden):
        assert secret not in output, output


@pytest.fixture
def password_url(db_url: str) -> Iterator[str]:
    """The test's PostgreSQL database, reached as a role of its own with a random password."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a URL with a password needs PostgreSQL (LABYARD_TEST_DATABASE=postgres)")
    url = make_url(db_url)
    role, password = f"leak_{secrets.token_hex(4)}", _secret()
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        conn.execute(text(f'ALTER DATABASE "{url.database}" OWNER TO {role}'))
    own = create_engine(url, isolation_level="AUTOCOMMIT")
    with own.connect() as conn:
        for table in conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        ):
            conn.execute(text(f'ALTER TABLE "{table[0]}" OWNER TO {role}'))
    try:
        yield url.set(username=role, password=password).render_as_string(hide_password=False)
    finally:
        with own.connect() as conn:
            conn.execute(text(f"REASSIGN OWNED BY {role} TO {url.username}"))
        own.dispose()
        with server.connect() as conn:
            conn.execute(text(f"DROP ROLE {role}"))
        server.dispose()


@pytest.mark.slow
def test_commands_with_a_password_in_the_url_print_none(tmp_path: Path, password_url: str) -> None:
    password = make_url(password_url).password
    assert password
    env = _env(tmp_path / "data", password_url)
    masked = shown_url(password_url)
    assert MASK in masked and password not in masked

    code, output = _run(env, "migrate")
    assert code == 0 and f"Database at head: {masked}" in output, output
    _assert_no_secret(output, password)
    for args, stdin in (
        (("user", "create", "ann", "--password-stdin"), "ann's password\n"),
        (("user", "passwd", "ann", "--password-stdin"), "ann's new password\n"),
        (("user", "list"), ""),
    ):
        code, output = _run(env, *args, stdin=stdin)
        assert code == 0, output
        _assert_no_secret(output, password, "ann's")

    port = free_port()
    output = _run_until(env, ["serve", "--port", str(port)], "Labyard listening on", port)
    assert "Created the admin account 'admin' with LABYARD_ADMIN_PASSWORD" in output, output
    _assert_no_secret(output, password)
    output = _run_until(env, ["scheduler"], "Labyard scheduler:", None)
    assert masked in output, output
    _assert_no_secret(output, password)


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    password = _secret()
    url = f"postgresql+psycopg://someone:{password}@127.0.0.1:{free_port()}/nowhere"
    for command in ("migrate", "scheduler"):
        code, output = _run(_env(tmp_path / "data", url), command)
        assert code == 1, output
        assert output.startswith(f"error: database {shown_url(url)}: connection failed"), output
        assert "Traceback" not in output
        _assert_no_secret(output, password)


@pytest.mark.parametrize("url", ["postgres://someone:{secret}@db/labyard", "not a url {secret}"])
def test_a_bad_url_is_refused_without_its_password(tmp_path: Path, url: str) -> None:
    password = _secret()
    code, output = _run(_env(tmp_path / "data", url.format(secret=password)), "migrate")
    assert code == 1 and output.startswith("error: database "), output
    _assert_no_secret(output, password)


def test_a_short_secret_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    short = "Sx" + secrets.token_hex(6)
    env = _env(tmp_path / "data", f"sqlite:///{tmp_path / 'labyard.db'}", LABYARD_SECRET_KEY=short)
    code, output = _run(env, "migrate")
    assert code == 2, output
    assert output.strip() == (
        "error: LABYARD_SECRET_KEY: LABYARD_SECRET_KEY must be at least 32 characters "
        "(or left unset)"
    )
    assert short not in output


def test_settings_keep_secrets_out_of_their_repr(tmp_path: Path) -> None:
    from labyard.config import Settings

    password = _secret()
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"postgresql+psycopg://u:{password}@h/db",
        secret_key=SECRET_KEY,
        admin_password=ADMIN_PASSWORD,
    )
    _assert_no_secret(repr(settings) + str(settings), password)
