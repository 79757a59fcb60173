"""A live `labyard serve` (real HTTP, its scheduler running local jobs) on this test's
database, and the `labyard` client run against it: in-process with Typer's CliRunner, or as
a real subprocess (`python -m labyard.cli`), each with its own config folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from labyard.cli import app
from labyard.config import Settings
from labyard.db import Database
from tests.factories import ADMIN_PASSWORD
from tests.serving import free_port, labyard_servers, wait_until_healthy


@dataclass
class Server:
    """A `labyard serve` process that can be killed and started again on the same port."""

    url: str
    start: Callable[[], subprocess.Popen[bytes]]
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def up(self) -> None:
        """Start it and wait until it answers."""
        self.proc = wait_until_healthy(self.start(), self.port)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


@dataclass
class Cli:
    """The client with its own config folder (XDG_CONFIG_HOME) and no LABYARD_* settings."""

    home: Path
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
        self.env["XDG_CONFIG_HOME"] = str(self.home)
        self.env["COLUMNS"] = "200"

    def __call__(self, *args: str, stdin: str = "") -> Result:
        """Run in-process (CliRunner)."""
        overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LABYARD_")}
        overrides.update(XDG_CONFIG_HOME=str(self.home), COLUMNS="200")
        return CliRunner().invoke(app, list(args), input=stdin, env=overrides)

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run as a real subprocess."""
        return self.popen_wait(self.popen(*args, stdin=stdin))

    def popen(self, *args: str, stdin: str = "") -> subprocess.Popen[str]:
        """Start as a subprocess (stdout and stderr piped)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "labyard.cli", *args],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
        return proc

    @staticmethod
    def popen_wait(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
        """Wait for a started client; its outcome."""
        assert proc.stdout is not None and proc.stderr is not None
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait(timeout=300)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def login(self) -> None:
        """Log in as the seeded admin."""
        done = self(
            "login", self.url, "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD
        )
        assert done.exit_code == 0, done.output

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The same request straight to the API with the stored token."""
        import json

        token = json.loads((self.home / "labyard" / "credentials.json").read_text())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=60, **kwargs)


@pytest.fixture
def server(settings: Settings, database: Database, tmp_path: Path) -> Iterator[Server]:
    """`labyard serve` on a fixed free port, started (restart it with kill() and up())."""
    port = free_port()
    with labyard_servers(settings, tmp_path / "server.log", LABYARD_PORT=str(port)) as start:
        live = Server(url=f"http://127.0.0.1:{port}", start=start, port=port)
        live.up()
        yield live


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    """The client, not logged in yet."""
    return Cli(home=tmp_path / "config", url=server.url)
