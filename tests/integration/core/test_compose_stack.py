"""compose.yaml's stack, built with no image registry (scripts/build-images: debootstrap base,
then the root Dockerfile's targets), answers /healthz on PostgreSQL over plain HTTP, and its
cookies reach the browser (not Secure on plain HTTP); the admin of the first start's log runs
a job through the JSON API on the host's Docker Engine (the suite's job image, as
LABYARD_DOCKER_IMAGE) and gets its log, metric and output file (written as the job uid, on the
same data path as the host's); then everything is torn down."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labyard.config import Settings
from labyard.jobs.executors.base import instance_id
from labyard.jobs.executors.docker import LABEL_INSTANCE
from labyard.jobs.models import FINAL_STATUSES
from tests import services

pytestmark = [pytest.mark.slow, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[3]
BUILD_TIMEOUT_S = 1500  # first build: Debian's PostgreSQL and the platform's wheels
READY_S = 240.0
JOB_S = 180.0  # the job itself takes a second or two; the rest is slack for a busy engine
JOB = """\
import os
print("hello from the compose stack", flush=True)
print("Train step=1 loss=0.25", flush=True)
with open(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "out.txt"), "w") as out:
    out.write("made by uid %d" % os.getuid())
"""


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
    services.require(lambda: services.ensure_image(services.TEST_IMAGE))  # the job's image
    data = tmp_path / "data"
    data.mkdir()
    env = dict(
        os.environ,
        POSTGRES_PASSWORD=secrets.token_hex(16),
        LABYARD_SECRET_KEY=secrets.token_hex(32),
        LABYARD_DATA_DIR=str(data),
        LABYARD_PUBLISH="127.0.0.1:",  # any free port on loopback
        LABYARD_DOCKER_IMAGE=services.TEST_IMAGE,  # the job image of labs that name none
    )
    command = [*compose, "-p", f"labyardtest{os.getpid()}", "-f", str(REPO / "compose.yaml")]
    try:
        subprocess.run([*command, "up", "-d", "--no-build"], env=env, check=True, timeout=300)
        yield command, env
    finally:
        subprocess.run([*command, "logs", "--no-color", "--tail", "40"], env=env, timeout=60)
        subprocess.run([*command, "down", "-v", "--remove-orphans"], env=env, timeout=300)
        _remove_job_containers(data)


def _remove_job_containers(data: Path) -> None:
    """The stack's job containers left on the host's engine (a job that did not finish)."""
    label = f"{LABEL_INSTANCE}={instance_id(Settings(data_dir=data))}"
    client = services.docker_client()
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)


def test_compose_stack_serves_healthz_and_cookies_and_runs_a_docker_job(
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
    _run_a_job(command, env, base)


def _run_a_job(command: list[str], env: dict[str, str], base: str) -> None:
    """The admin (password from the first start's log) submits a lab over the JSON API; the
    job runs on the host's engine as the job uid and its log, metric and output come back."""
    logs = subprocess.run(
        [*command, "logs", "--no-color", "labyard"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    found = re.search(r"Created the admin account: username 'admin', password '([^']+)'", logs)
    assert found, logs
    password = found.group(1)
    with httpx.Client(base_url=base, timeout=30) as web:
        grant = web.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": password},
        )
        assert grant.status_code == 200, grant.text
        web.headers["Authorization"] = f"Bearer {grant.json()['access_token']}"
        project = _ok(web.post("/api/v1/projects", json={"name": "compose"}))
        lab = _ok(web.post("/api/v1/labs", json={"name": "hello", "project_id": project["id"]}))
        _ok(
            web.put(
                f"/api/v1/labs/{lab['id']}/files/content", json={"path": "job.py", "content": JOB}
            )
        )
        config = {"content": "command: python3 job.py\n"}  # no image: LABYARD_DOCKER_IMAGE's
        _ok(web.put(f"/api/v1/labs/{lab['id']}/config", json=config))
        sweep = _ok(web.post(f"/api/v1/labs/{lab['id']}/sweeps", json={"flavor": "cpu"}))
        [job_id] = [job["id"] for job in sweep["jobs"]]
        deadline, job = time.monotonic() + JOB_S, {}
        while time.monotonic() < deadline:
            job = _ok(web.get(f"/api/v1/jobs/{job_id}"))
            if job["status"] in FINAL_STATUSES:
                break
            time.sleep(0.5)
        log = web.get(f"/api/v1/jobs/{job_id}/logs").text
        assert job["status"] == "succeeded", (job, log)
        assert job["exit_code"] == 0 and job["image"] == services.TEST_IMAGE
        assert "hello from the compose stack" in log
        series = _ok(web.get(f"/api/v1/jobs/{job_id}/metrics"))["series"]
        assert [s["name"] for s in series] == ["Train_loss"]
        output = web.get(f"/jobs/{job_id}/files/out.txt")
        assert output.status_code == 200 and output.text == "made by uid 64000", output.text
    done = Path(env["LABYARD_DATA_DIR"], "jobs", str(job_id), "output", "out.txt")
    assert done.read_text() == "made by uid 64000"  # the same path on the host


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, (response.status_code, response.text)
    return response.json()
