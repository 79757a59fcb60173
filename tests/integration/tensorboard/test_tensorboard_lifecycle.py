"""Stop, the maximum count, the idle reaper, dead processes, and the server's start/stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

from labyard.auth.models import User
from labyard.db import utcnow
from labyard.projects import service as project_service
from labyard.tensorboard import lifecycle, process, service
from labyard.tensorboard.models import TensorBoardInstance
from tests.factories import make_job_with_scalars, session_client


def _open(client: Any, job_ids: list[int]) -> Any:
    return client.hx("POST", "/api/v1/tensorboards", json={"job_ids": job_ids})


def test_max_count_then_stop_frees_a_place(tb: Any) -> None:
    tb.settings.tensorboard_max_instances = 1
    second_job = make_job_with_scalars(tb.database, tb.settings, tb.project_id, name="other")
    with session_client(tb.app, tb.database, tb.owner) as owner:
        first = _open(owner, [tb.job_id]).json()
        refused = _open(owner, [second_job])
        assert refused.status_code == 409
        assert "the most this server allows (1)" in refused.json()["detail"]
        page = owner.hx("POST", "/tensorboards/open", data={"job_ids": str(second_job)})
        assert page.status_code == 409 and "Stop one on the TensorBoards page" in page.text
        assert tb.count() == 1  # nothing written, nothing started

        row = tb.instance(first["id"])
        listing = owner.hx("POST", f"/tensorboards/{first['id']}/stop")
        assert listing.status_code == 200 and "No TensorBoard is running." in listing.text
        assert tb.instance(first["id"]).status == "stopped"
        assert not process.is_alive(row.pid, row.process_started_at)
        gone = owner.get(f"/tensorboard/{first['id']}/")
        assert gone.status_code == 404 and "has stopped" in gone.text
        assert "has stopped" in owner.get(f"/tensorboards/{first['id']}/status").text
        assert owner.hx("POST", f"/api/v1/tensorboards/{first['id']}/stop").status_code == 200

        second = _open(owner, [second_job])
        assert second.status_code == 200 and second.json()["id"] != first["id"]


def test_reaper_stops_idle_and_marks_dead(tb: Any) -> None:
    tb.settings.tensorboard_idle_minutes = 0.5
    other_job = make_job_with_scalars(tb.database, tb.settings, tb.project_id, name="other")
    with session_client(tb.app, tb.database, tb.owner) as owner:
        idle = tb.instance(_open(owner, [tb.job_id]).json()["id"])
        crashed = tb.instance(_open(owner, [other_job]).json()["id"])
        assert lifecycle.reap_once(tb.settings, tb.database) == []  # both fresh and alive

        with tb.database.session() as db:
            row = db.get(TensorBoardInstance, idle.id)
            assert row is not None
            row.last_access_at = utcnow() - timedelta(minutes=1)
        os.kill(crashed.pid, signal.SIGKILL)  # a crash, outside Labyard
        _wait_dead(crashed)

        status = owner.get(f"/tensorboards/{crashed.id}/status").text
        assert "TensorBoard exited" in status
        assert sorted(lifecycle.reap_once(tb.settings, tb.database)) == [idle.id]
        assert tb.instance(idle.id).status == "stopped"
        assert tb.instance(crashed.id).status == "stopped"
        assert not process.is_alive(idle.pid, idle.process_started_at)
        assert owner.get("/api/v1/tensorboards").json() == []


def _wait_dead(row: TensorBoardInstance) -> None:
    for _ in range(200):
        if not process.is_alive(row.pid, row.process_started_at):
            return
        time.sleep(0.05)
    raise AssertionError("the killed process is still alive")


def test_server_start_marks_gone_processes_and_stop_ends_children(tb: Any) -> None:
    # a row whose process is gone (an earlier server's, say): a real pid, now dead
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process.start_time(gone.pid)
    gone.wait()
    with tb.database.session() as db:
        db.add(
            TensorBoardInstance(
                project_id=tb.project_id,
                key="x" * 64,
                logdir_spec={"a": "/nonexistent"},
                port=1,
                pid=gone.pid,
                process_started_at=started or utcnow(),
                status="running",
            )
        )
    with session_client(tb.app, tb.database, tb.owner) as owner:  # lifespan: start()
        assert owner.get("/api/v1/tensorboards").json() == []
        opened = tb.instance(_open(owner, [tb.job_id]).json()["id"])
        assert process.is_alive(opened.pid, opened.process_started_at)
    # lifespan: stop() ended the process this server started
    assert not process.is_alive(opened.pid, opened.process_started_at)
    assert tb.instance(opened.id).status == "stopped"
    with tb.database.session() as db:
        assert service.count_live(db) == 0


def test_another_servers_process_is_adopted_not_killed(tb: Any) -> None:
    """A live process the database knows (started before a restart) keeps serving."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process.start_time(sleeper.pid)
        with tb.database.session() as db:
            db.add(
                TensorBoardInstance(
                    project_id=tb.project_id,
                    key="y" * 64,
                    logdir_spec={"a": "/nonexistent"},
                    port=1,
                    pid=sleeper.pid,
                    process_started_at=started,
                    status="running",
                )
            )
        with session_client(tb.app, tb.database, tb.owner) as owner:
            assert len(owner.get("/api/v1/tensorboards").json()) == 1
        assert sleeper.poll() is None  # not ours to stop at shutdown
    finally:
        sleeper.kill()
        sleeper.wait()


def test_deleting_a_project_stops_its_tensorboards(tb: Any) -> None:
    with tb.database.session() as db:
        owner = db.get(User, tb.owner.id)
        project_id = project_service.create_project(db, owner=owner, name="doomed").id
    job_id = make_job_with_scalars(tb.database, tb.settings, project_id, name="doomed run")
    with session_client(tb.app, tb.database, tb.owner) as owner_client:
        instance = tb.instance(_open(owner_client, [job_id]).json()["id"])
        assert process.is_alive(instance.pid, instance.process_started_at)
        answer = owner_client.hx("POST", f"/projects/{project_id}/delete")
        assert answer.status_code == 204, answer.text
    deadline = time.monotonic() + 30
    while process.is_alive(instance.pid, instance.process_started_at):
        assert time.monotonic() < deadline, "the deleted project's TensorBoard still runs"
        time.sleep(0.1)
    assert tb.count() == 0
