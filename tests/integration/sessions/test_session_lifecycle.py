"""A session's life beyond start and stop: idle culling frees its GPU, the idle warning and
"keep running", admins see and stop every session, a session whose process died shows why,
and `kill -9` of the server: the restarted server adopts the session and proxies it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job
from labyard.sessions import service
from tests.factories import ADMIN_PASSWORD, access_token_for, session_client
from tests.integration.sessions.conftest import DEADLINE_S, SessionWorld
from tests.serving import free_port, wait_until_healthy


def _until(check: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + DEADLINE_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def test_an_idle_session_is_stopped_and_its_gpu_freed(world: SessionWorld, tmp_path: Path) -> None:
    writer = world.api("write")
    writer.post(f"/api/v1/labs/{world.lab_id}/session")
    world.running(writer)
    assert service.cull_idle(world.settings, world.database) == []  # not idle for an hour
    world.settings.session_idle_minutes = 0.02  # 1.2 seconds
    _until(lambda: service.cull_idle(world.settings, world.database), "the culler to stop it")
    stopped = world.tick_until(writer, lambda b: b["state"] == "stopped")
    assert stopped["reason"] == "stopped after 0.02 minutes idle"
    blocker = world.blocking_job(tmp_path)
    world.scheduler.tick()
    with world.database.session() as db:
        job = db.get(Job, blocker)
        assert job is not None and job.status == "running" and job.assigned_gpus == ["0"]


def test_idle_warning_and_keep_running(world: SessionWorld) -> None:
    writer = world.api("write")
    writer.post(f"/api/v1/labs/{world.lab_id}/session")
    world.running(writer)
    panel_url = f"/labs/{world.lab_id}/jupyter/panel"
    with session_client(world.app, world.database, world.users["write"]) as browser:
        quiet = browser.get(panel_url)
        assert quiet.status_code == 200 and "Keep running" not in quiet.text
        assert "takes effect at its next start" in quiet.text
        world.settings.session_idle_minutes = 0.05  # 3 s: the warning shows after 1.5 s idle
        warned = _until(lambda: "Keep running" in browser.get(panel_url).text, "the warning")
        assert warned
        kept = browser.hx("POST", f"/labs/{world.lab_id}/jupyter/keep")
        assert kept.status_code == 200 and "Keep running" not in kept.text
    assert world.state(writer)["idle_seconds"] < 1.5


def test_admins_see_and_stop_every_session(world: SessionWorld) -> None:
    writer = world.api("write")
    writer.post(f"/api/v1/labs/{world.lab_id}/session")
    world.running(writer)
    with session_client(world.app, world.database, world.users["boss"]) as admin:
        page = admin.get("/sessions")
        assert page.status_code == 200
        assert "nb" in page.text and "write" in page.text and "running" in page.text
        stop = admin.post(
            f"/labs/{world.lab_id}/jupyter/stop?next=sessions", data={"csrf_token": admin.csrf}
        )
        assert stop.status_code == 303 and stop.headers["location"] == "/sessions"
    final = world.tick_until(writer, lambda b: b["state"] == "stopped")
    assert final["reason"] == "stopped by boss"
    with session_client(world.app, world.database, world.users["read"]) as reader:
        assert "No session is queued or running." in reader.get("/sessions").text


def test_a_session_whose_process_died_shows_why(world: SessionWorld) -> None:
    writer = world.api("write")
    body = writer.post(f"/api/v1/labs/{world.lab_id}/session").json()
    world.running(writer)
    with world.database.session() as db:
        job = db.get(Job, body["job_id"])
        assert job is not None
        external = job.external_id
    world.scheduler.executor.stop(body["job_id"], external, force=True)  # as if it crashed
    stopped = world.tick_until(writer, lambda b: b["state"] == "stopped")
    assert stopped["reason"].startswith("exited with code")
    page = world.api("write").get(f"/api/v1/labs/{world.lab_id}/session").json()
    assert page["url"] == "" and page["gpus"] == []


def test_a_session_job_is_not_retried_but_restarted_from_its_lab(world: SessionWorld) -> None:
    writer = world.api("write")
    body = writer.post(f"/api/v1/labs/{world.lab_id}/session").json()
    writer.delete(f"/api/v1/labs/{world.lab_id}/session")  # queued: stopped at once
    with world.database.read_session() as db:
        before = db.query(Job).count()
    retried = writer.post(f"/api/v1/jobs/{body['job_id']}/retry")
    assert retried.status_code == 409
    assert "start it again from its lab's page" in retried.json()["detail"]
    with world.database.read_session() as db:
        assert db.query(Job).count() == before
    again = writer.post(f"/api/v1/labs/{world.lab_id}/session").json()
    assert again["state"] in ("queued", "starting") and again["job_id"] != body["job_id"]


def test_a_session_that_cannot_start_says_why(world: SessionWorld, tmp_path: Path) -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("needs Debian's python3 (without JupyterLab)")
    bare = tmp_path / "bare-python"  # a `python` without JupyterLab for the session's job
    bare.mkdir()
    (bare / "python").symlink_to("/usr/bin/python3")
    world.settings.job_python = str(bare / "python")
    writer = world.api("write")
    writer.post(f"/api/v1/labs/{world.lab_id}/session")
    stopped = world.tick_until(writer, lambda b: b["state"] == "stopped")
    assert stopped["reason"].startswith("exited with code 1: ")
    assert "No module named jupyterlab" in stopped["reason"]


@pytest.fixture
def server(
    world: SessionWorld, tmp_path: Path
) -> Iterator[Callable[[], tuple[subprocess.Popen[bytes], str]]]:
    """Start `labyard serve` (its scheduler too) on the world's database and data dir."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        settings = world.settings
        env = {
            **os.environ,
            "LABYARD_DATA_DIR": str(settings.data_dir),
            "LABYARD_DATABASE_URL": settings.database_url,
            "LABYARD_SECRET_KEY": settings.secret_key,
            "LABYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "LABYARD_GPUS": "0",
            "LABYARD_SCHEDULER_INTERVAL_SECONDS": "0.2",
            "LABYARD_PORT": str(port),
        }
        log = open(tmp_path / "server.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "labyard.cli", "serve"], env=env, stdout=log, stderr=log
        )
        procs.append(proc)
        return wait_until_healthy(proc, port), f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill9_of_the_server_then_the_session_is_adopted_and_proxied(
    world: SessionWorld, server: Callable[[], tuple[subprocess.Popen[bytes], str]]
) -> None:
    token = access_token_for(world.app, world.database, world.users["write"])
    headers = {"authorization": f"Bearer {token}"}
    first, url = server()
    started = httpx.post(f"{url}/api/v1/labs/{world.lab_id}/session", headers=headers, timeout=30)
    assert started.status_code == 200, started.text
    job_id = started.json()["job_id"]

    def state(base: str) -> str:
        answer = httpx.get(
            f"{base}/api/v1/labs/{world.lab_id}/session", headers=headers, timeout=30
        )
        return str(answer.json()["state"])

    _until(lambda: state(url) == "running", "the session to run")
    before = httpx.put(
        f"{url}/labs/{world.lab_id}/session/api/contents/before.txt",
        headers=headers,
        json={"type": "file", "format": "text", "content": "before"},
        timeout=30,
    )
    assert before.status_code == 201, before.text
    with world.database.session() as db:
        external = db.get(Job, job_id).external_id  # type: ignore[union-attr]
    first.send_signal(signal.SIGKILL)
    first.wait()

    second, url = server()
    assert state(url) == "running"  # JupyterLab outlived the server
    listed = httpx.get(
        f"{url}/labs/{world.lab_id}/session/api/contents", headers=headers, timeout=30
    )
    assert listed.status_code == 200 and "before.txt" in listed.text
    _until(lambda: _lease_pid(world) == second.pid, "the new server to adopt the session")
    with world.database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None and job.status == "running" and job.external_id == external
    log = (jobs_service.job_dir(world.settings, job_id) / "job.log").read_text()
    assert log.count("starting JupyterLab") == 1  # the same process, never started twice
    stop = httpx.delete(f"{url}/api/v1/labs/{world.lab_id}/session", headers=headers, timeout=30)
    assert stop.status_code == 200
    _until(lambda: state(url) == "stopped", "the session to stop")
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)


def _lease_pid(world: SessionWorld) -> int | None:
    """The pid of the server whose scheduler holds the lease (it adopts on its first tick)."""
    from labyard.jobs.models import SchedulerLease

    with world.database.session() as db:
        lease = db.get(SchedulerLease, 1)
        return int(lease.holder.split("|")[1]) if lease is not None else None
