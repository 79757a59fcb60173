"""The `labyard` command as real subprocesses: migrate, user create | passwd | list, serve."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port

LABYARD = str(Path(sys.executable).with_name("labyard"))
GENERATED = re.compile(r"password '([^']+)' \(shown once")


def _env(data_dir: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
    env.update(
        LABYARD_DATA_DIR=str(data_dir),
        LABYARD_DATABASE_URL=db_url,
        LABYARD_START_SCHEDULER="false",
        **extra,
    )
    return env


def _run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LABYARD, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_migrate_and_user_commands(tmp_path: Path, db_url: str) -> None:
    env = _env(tmp_path / "data", db_url)
    migrated = _run(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "Database at head" in migrated.stdout
    created = _run(env, "user", "create", "bob", "--password-stdin", stdin="bob's password\n")
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "Created user 'bob'"
    boss = _run(env, "user", "create", "boss", "--admin", "--password-stdin", stdin="boss pass 1\n")
    assert boss.stdout.strip() == "Created user 'boss' (admin)"
    changed = _run(env, "user", "passwd", "bob", "--password-stdin", stdin="a new password\n")
    assert changed.returncode == 0 and "Password of 'bob' changed" in changed.stdout
    listed = _run(env, "user", "list")
    rows = [line.split("\t") for line in listed.stdout.strip().splitlines()]
    assert [(r[1], r[2]) for r in rows] == [("bob", ""), ("boss", "admin")]


BAD_COMMANDS = [
    (("user", "create", "carl"), "", "give the password with --password-stdin"),
    (("user", "create", "carl", "--password-stdin"), "", "no password on standard input"),
    (("user", "create", "carl", "--password-stdin"), "short\n", "at least 8 characters"),
    (("user", "create", "bad name", "--password-stdin"), "long enough\n", "Username"),
    (("user", "create", "bob", "--password-stdin"), "long enough\n", "already exists"),
    (("user", "passwd", "carl", "--password-stdin"), "long enough\n", "No user 'carl'"),
    (("user", "passwd", "bob", "--password-stdin"), "tiny\n", "at least 8 characters"),
    (("user", "passwd", "bob"), "long enough\n", "give the password with --password-stdin"),
]


@pytest.mark.slow
def test_bad_user_commands_fail_clearly_and_change_nothing(tmp_path: Path, db_url: str) -> None:
    env = _env(tmp_path / "data", db_url)
    made = _run(env, "user", "create", "bob", "--password-stdin", stdin="bob password\n")
    assert made.returncode == 0, made.stderr
    before = _run(env, "user", "list").stdout
    for args, stdin, message in BAD_COMMANDS:
        result = _run(env, *args, stdin=stdin)
        assert result.returncode != 0, args
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert _run(env, "user", "list").stdout == before
    assert _token_via_app(env, "bob", "bob password")  # bob's password is unchanged


def _token_via_app(env: dict[str, str], username: str, password: str) -> str:
    """Check a password through the real app (in-process, on the same database)."""
    from fastapi.testclient import TestClient

    from labyard.app import create_app
    from labyard.config import Settings

    settings = Settings(
        data_dir=env["LABYARD_DATA_DIR"],
        database_url=env["LABYARD_DATABASE_URL"],
        secret_key="s" * 40,
        start_scheduler=False,
    )
    client = TestClient(create_app(settings))
    response = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    client.app.state.db.dispose()  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@contextmanager
def serve_command(command: str, env: dict[str, str], cwd: Path) -> Iterator[tuple[str, str]]:
    """Run `<command> serve` on a free port as a subprocess; yield (base URL, what it printed
    before listening, admin password included); stopped (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [command, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if "Labyard listening on" in line:
                break
        output = "".join(printed)
        assert proc.poll() is None, output
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, output
            time.sleep(0.2)
        yield base, output
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _grant(base: str, username: str, password: str) -> int:
    return httpx.post(
        f"{base}/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=30,
    ).status_code


@pytest.mark.slow
def test_serve_seeds_once_and_keeps_the_secret(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    env = _env(data, db_url)
    with serve_command(LABYARD, env, tmp_path) as (base, first):
        assert f"Labyard data directory: {data}" in first
        passwords = GENERATED.findall(first)
        assert len(passwords) == 1, first
        health = httpx.get(f"{base}/healthz").json()
        assert health["database"] == "ok"
        assert _grant(base, "admin", passwords[0]) == 200
        flavors = httpx.get(
            f"{base}/api/v1/flavors",
            headers={"Authorization": "Bearer " + _token(base, passwords[0])},
        ).json()
        assert {f["name"]: f["gpus"] for f in flavors} == {
            "cpu": 0,
            "small": 1,
            "medium": 2,
            "large": 4,
        }
    secret = data / "secret_key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key = secret.read_text()
    assert len(key) >= 32
    with serve_command(LABYARD, env, tmp_path) as (base, second):
        assert "password" not in second and "Created the admin" not in second
        assert _grant(base, "admin", passwords[0]) == 200
    assert secret.read_text() == key


def _token(base: str, password: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token",
        data={"grant_type": "password", "username": "admin", "password": password},
        timeout=30,
    )
    return str(response.json()["access_token"])


@pytest.mark.slow
def test_serve_with_admin_password_from_the_environment(tmp_path: Path, db_url: str) -> None:
    env = _env(tmp_path / "data", db_url, LABYARD_ADMIN_PASSWORD="chosen admin password")
    with serve_command(LABYARD, env, tmp_path) as (base, printed):
        assert "with LABYARD_ADMIN_PASSWORD" in printed
        assert not GENERATED.search(printed) and "chosen admin password" not in printed
        assert _grant(base, "admin", "chosen admin password") == 200


@pytest.mark.slow
def test_serve_creates_the_admin_even_after_cli_users(tmp_path: Path, db_url: str) -> None:
    env = _env(tmp_path / "data", db_url)
    assert (
        _run(env, "user", "create", "bob", "--password-stdin", stdin="bob password\n").returncode
        == 0
    )
    with serve_command(LABYARD, env, tmp_path) as (base, printed):
        passwords = GENERATED.findall(printed)
        assert len(passwords) == 1, printed
        assert _grant(base, "admin", passwords[0]) == 200


# ------------------------------------------------------------------ `pip install .`

BUNDLED = ("templates", "static", "migrations", "lab_templates", "runner")


def _checkout_copy(dest: Path) -> Path:
    """The files a clean checkout has (tracked and untracked-but-not-ignored), copied."""
    repo = Path(__file__).resolve().parents[3]
    git = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if git.returncode == 0:
        listed = git.stdout.split("\0")
    else:  # not a git checkout (an unpacked source tree): everything but build leftovers
        listed = [
            str(p.relative_to(repo))
            for p in repo.rglob("*")
            if "__pycache__" not in p.parts
            and p.suffix not in (".pyc", ".whl")
            and ".venv" not in p.parts
        ]
    for name in filter(None, listed):
        source = repo / name
        if source.is_file() and name.split("/")[0] in {"labyard", *BUNDLED} | {
            "setup.py",
            "pyproject.toml",
            "README.md",
        }:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return repo


@pytest.mark.slow
def test_wheel_installs_a_working_command_outside_the_repo(tmp_path: Path) -> None:
    import sysconfig
    import zipfile

    source = tmp_path / "src"
    repo = _checkout_copy(source)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("labyard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "labyard/templates/base.html",
        "labyard/templates/docs.html",
        "labyard/static/vendor/htmx.min.js",
        "labyard/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "labyard/migrations/env.py",
        "labyard/cli.py",
    ):
        assert required in names, required
    assert any(n.startswith("labyard/migrations/versions/") and n.endswith(".py") for n in names)
    for folder in ("lab_templates", "runner"):
        if (repo / folder).is_dir():
            assert any(n.startswith(f"labyard/{folder}/") for n in names), folder

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    # the dependencies come from this environment's site-packages
    (Path(site) / "labyard-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABYARD_", "PYTHON"))}
    env.update(LABYARD_DATA_DIR=str(tmp_path / "data"), LABYARD_START_SCHEDULER="false")
    found = subprocess.run(
        [str(python), "-c", "import labyard; print(labyard.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    where = found.stdout.strip()
    assert where.startswith(site) and not where.startswith(str(repo))
    with serve_command(str(venv / "bin" / "labyard"), env, tmp_path) as (base, printed):
        assert GENERATED.search(printed)
        assert httpx.get(f"{base}/healthz").json()["database"] == "ok"
        login = httpx.get(f"{base}/login")
        assert login.status_code == 200 and "Log in to Labyard" in login.text
        assert httpx.get(f"{base}/static/vendor/htmx.min.js").status_code == 200
        assert httpx.get(f"{base}/docs").status_code == 200
