"""Real HTTP servers for browser tests and benchmarks: a free loopback port, the app under
uvicorn in a background thread. One place for it (e2e fixtures and benchmarks use it)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

START_TIMEOUT_S = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Serve `app` (lifespan included) on a free loopback port; yield its base URL."""
    with serve_on(app, free_port()) as url:
        yield url


@contextmanager
def serve_on(app: Any, port: int) -> Iterator[str]:
    """Serve `app` (lifespan included) on loopback `port`; yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def wait_until_healthy(proc: subprocess.Popen[bytes], port: int) -> subprocess.Popen[bytes]:
    """Wait for a server process on loopback `port` to answer /healthz; kill it if it never
    does (benchmarks start `labyard serve` or their own server this way)."""
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


@contextmanager
def labyard_servers(
    settings: Any, log: Any, **env: str
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Yield a function that starts `labyard serve` (with its scheduler) on `settings`'
    database and data folder, logging to the file `log`; every server still running is
    killed at the end. `env` adds or overrides LABYARD_* settings."""
    import os
    import sys

    from tests.factories import ADMIN_PASSWORD

    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        variables = {
            **os.environ,
            "LABYARD_DATA_DIR": str(settings.data_dir),
            "LABYARD_DATABASE_URL": settings.database_url,
            "LABYARD_SECRET_KEY": settings.secret_key,
            "LABYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LABYARD_EXECUTOR": settings.executor,
            "LABYARD_SCHEDULER_INTERVAL_SECONDS": "0.2",
            "LABYARD_PORT": str(free_port()),
            **env,
        }
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "labyard.cli", "serve"], env=variables, stdout=out,
                stderr=out,
            )  # fmt: skip
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:  # a graceful stop ends the TensorBoard processes it started
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    """Poll until `check()` holds (a safety timeout, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
