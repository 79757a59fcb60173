"""Real HTTP servers for browser tests and benchmarks: a free loopback port, the app under
uvicorn in a background thread. One place for it (e2e fixtures and benchmarks use it)."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
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
