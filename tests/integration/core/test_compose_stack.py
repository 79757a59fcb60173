"""compose.yaml's stack, built with no image registry (scripts/build-images: debootstrap base,
then the root Dockerfile's targets), answers /healthz on PostgreSQL over plain HTTP, and its
cookies reach the browser (not Secure on plain HTTP); then everything is torn down."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import services

pytestmark = [pytest.mark.slow, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[3]
BUILD_TIMEOUT_S = 1500  # first build: Debian's PostgreSQL and the platform's wheels
READY_S = 240.0


def _compose() -> list[str]:
    """The compose CLI: Debian's docker-compose, else the docker compose plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    raise services.ServiceMissing("no compose CLI: apt-get install -y docker-compose")


def _build_images() -> None:
    if os.geteuid() != 0:
        raise services.ServiceMissing("building the base image (debootstrap) needs root")
    env = dict(os.environ)
    if "LABYARD_WHEELS" not in env and Path("/opt/wheels").is_dir():
        env["LABYARD_WHEELS"] = "/opt/wheels"  # the build machines' CPU torch, not PyPI's CUDA one
    done = subprocess.run(
        [str(REPO / "scripts" / "build-images"), "server", "postgres"],
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    services.require(services.docker_client)
    compose = services.require(_compose)
    services.require(_build_images)
    data = tmp_path / "data"
    data.mkdir()
    env = dict(
        os.environ,
        POSTGRES_PASSWORD=secrets.token_hex(16),
        LABYARD_SECRET_KEY=secrets.token_hex(32),
        LABYARD_DATA_DIR=str(data),
        LABYARD_PUBLISH="127.0.0.1:",  # any free port on loopback
    )
    command = [*compose, "-p", f"labyardtest{os.getpid()}", "-f", str(REPO / "compose.yaml")]
    try:
        subprocess.run([*command, "up", "-d", "--no-build"], env=env, check=True, timeout=300)
        yield command, env
    finally:
        subprocess.run([*command, "logs", "--no-color", "--tail", "40"], env=env, timeout=60)
        subprocess.run([*command, "down", "-v", "--remove-orphans"], env=env, timeout=300)


def test_compose_stack_serves_healthz_and_cookies_over_plain_http(
    stack: tuple[list[str], dict[str, str]],
) -> None:
    command, env = stack
    port = subprocess.run(
        [*command, "port", "labyard", "8000"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    base = f"http://{port}"
    deadline, answer = time.monotonic() + READY_S, None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/healthz", timeout=5)
            if answer.status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(1)
    assert answer is not None and answer.status_code == 200, answer and answer.text
    assert answer.json()["database"] == "ok"
    cookies = httpx.get(f"{base}/login", timeout=10).headers.get_list("set-cookie")
    assert cookies, "the login page sets its pre-login cookie"
    assert not any("secure" in cookie.lower().split("; ") for cookie in cookies)
    running = subprocess.run(
        [*command, "ps", "-q"], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(running) == 2  # the platform and PostgreSQL
