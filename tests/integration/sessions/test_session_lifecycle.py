"""A session's life beyond start and stop: idle culling frees its GPU, the idle warning and
"keep running", admins see and stop every session, a session whose process died shows why,
and `kill -9` of the server: the restarted server adopts the session and proxies it again."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job
from labyard.sessions import jupyter, service
from tests.factories import session_client
from tests.integration.sessions.conftest import (
    Server,
    SessionWorld,
    kill9_then_adopt,
    until,
)
from tests.integration.sessions.jupyter_client import terminal_output


def test_an_idle_session_is_stopped_and_its_gpu_freed(world: SessionWorld, tmp_path: Path) -> None:
    writer = world.api("write")
    writer.post(f"/api/v1/labs/{world.lab_id}/session")
    world.running(writer)
    assert service.cull_idle(world.settings, world.database) == []  # not idle for an hour
    world.settings.session_idle_minutes = 0.02  # 1.2 seconds
    until(lambda: service.cull_idle(world.settings, world.database), "the culler to stop it")
    stopped = world.tick_until(writer, lambda b: b["state"] == "stopped")
    assert stopped["reason"] == "stopped after 0.02 minutes idle"
    blocker = world.blocking_job(tmp_path)
    world.scheduler.tick()
    with world.database.session() as db:
        job = db.get(Job, blocker)
        assert job is not None and job.status == "running" and job.assigned_gpus == ["0"]


def test_idle_warning_keep_running_and_terminal_input(world: SessionWorld) -> None:
    writer = world.api("write")
    job_id = writer.post(f"/api/v1/labs/{world.lab_id}/session").json()["job_id"]
    world.running(writer)
    panel_url = f"/labs/{world.lab_id}/jupyter/panel"
    with session_client(world.app, world.database, world.users["write"]) as browser:
        quiet = browser.get(panel_url)
        assert quiet.status_code == 200 and "Keep running" not in quiet.text
        assert "takes effect at its next start" in quiet.text
        world.settings.session_idle_minutes = 0.05  # 3 s: the warning shows after 1.5 s idle
        warned = until(lambda: "Keep running" in browser.get(panel_url).text, "the warning")
        assert warned
        kept = browser.hx("POST", f"/labs/{world.lab_id}/jupyter/keep")
        assert kept.status_code == 200 and "Keep running" not in kept.text
    assert world.state(writer)["idle_seconds"] < 1.5

    # typing in a terminal alone is activity: no kernel runs, no other request is made
    world.settings.session_idle_minutes = 60
    base = f"/labs/{world.lab_id}/session"
    name = writer.post(f"{base}/api/terminals").json()["name"]
    with writer.websocket_connect(f"{base}/terminals/websocket/{name}") as ws:
        terminal_output(ws, "echo ready-$((1+1))", "ready-2")  # the shell is up and quiet
        until(lambda: world.state(writer)["idle_seconds"] >= 1.0, "a quiet terminal")
        before = _last_activity(world, job_id)
        ws.send_text(json.dumps(["stdin", "x"]))  # one key, no Enter
        until(lambda: _last_activity(world, job_id) > before, "the keystroke to count")


def test_admins_see_and_stop_every_session(world: SessionWorld) -> None:
    writer = world.api("write")
    writer.post(f"/api/v1/labs/{world.lab_id}/session")
    world.running(writer)
    with session_client(world.app, world.database, world.users["boss"]) as admin:
        page = admin.get("/sessions")
        assert page.status_code == 200
        row = _row(page.text, world.lab_id)
        cells = [
            re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        assert cells[:4] == ["own-default", "nb", "write", "running"]  # project, lab, who, state
        assert cells[4] == "0"  # the GPU of the 1-GPU node
        assert re.fullmatch(r"\d+ min", cells[5])  # idle for whole minutes (0 here)
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


def test_kill9_of_the_server_then_the_session_is_adopted_and_proxied(
    world: SessionWorld, server: Server
) -> None:
    kill9_then_adopt(world, server)


def _row(page: str, lab_id: int) -> str:
    """The sessions list's row of one lab."""
    found = re.search(rf'<tr data-lab="{lab_id}">(.*?)</tr>', page, re.S)
    assert found is not None, page
    return found[1]


def _last_activity(world: SessionWorld, job_id: int) -> datetime:
    """JupyterLab's own last activity (asking does not count as activity)."""
    folder = jobs_service.job_dir(world.settings, job_id)
    seen = jupyter.activity(world.settings, folder, job_id, world.lab_id)
    assert seen is not None
    return seen.last_activity
