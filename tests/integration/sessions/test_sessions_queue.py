"""A session is a job to the scheduler: on a 1-GPU node it waits behind a job holding the GPU
(with its queue position), starts when that job ends, gets exactly that GPU, and stops."""

from __future__ import annotations

from pathlib import Path

from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job
from labyard.sessions.models import LabSession
from tests.integration.sessions.conftest import SessionWorld


def test_session_waits_for_the_gpu_then_runs_and_stops(world: SessionWorld, tmp_path: Path) -> None:
    blocker = world.blocking_job(tmp_path)
    writer = world.api("write")
    world.tick_until(writer, lambda b: b["state"] == "stopped")  # the job takes the GPU
    with world.database.session() as db:
        assert db.get(Job, blocker).assigned_gpus == ["0"]  # type: ignore[union-attr]

    started = writer.post(f"/api/v1/labs/{world.lab_id}/session", json={})
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["state"] == "queued" and body["queue_position"] == 1
    assert body["flavor"] == "g1" and body["started_by"] == "write" and body["url"] == ""
    world.scheduler.tick()
    assert world.state(writer)["state"] == "queued"  # the GPU is still the job's

    # starting again while queued answers the same session: no second job
    again = writer.post(f"/api/v1/labs/{world.lab_id}/session")
    assert again.status_code == 200 and again.json()["job_id"] == body["job_id"]

    (jobs_service.job_dir(world.settings, blocker) / "output" / "go").touch()
    running = world.running(writer)
    assert running["gpus"] == ["0"] and running["queue_position"] is None
    assert running["url"] == f"/labs/{world.lab_id}/session/"
    assert running["idle_seconds"] is not None and running["idle_seconds"] >= 0
    with world.database.session() as db:
        job = db.get(Job, body["job_id"])
        assert job is not None and job.status == "running" and job.lab_id == world.lab_id
        assert db.query(LabSession).count() == 1
    # the session's process sees exactly its GPU and works in the lab's own folder
    log = (jobs_service.job_dir(world.settings, body["job_id"]) / "job.log").read_text()
    lab_folder = world.settings.data_dir / "labs" / str(world.lab_id)
    assert f"starting JupyterLab in {lab_folder}" in log
    assert "token=..." in log or "token=" not in log  # JupyterLab never logs its token

    # the listing shows it to WRITE members and admins, not to READ members or strangers
    assert [s["lab_id"] for s in writer.get("/api/v1/sessions").json()] == [world.lab_id]
    assert [s["lab_id"] for s in world.api("boss").get("/api/v1/sessions").json()] == [world.lab_id]
    assert world.api("read").get("/api/v1/sessions").json() == []
    assert world.api("stranger").get("/api/v1/sessions").json() == []

    stopped = writer.delete(f"/api/v1/labs/{world.lab_id}/session")
    assert stopped.status_code == 200 and stopped.json()["stopping"] is True
    final = world.tick_until(writer, lambda b: b["state"] == "stopped")
    assert final["reason"] == "stopped by write" and final["gpus"] == []
    assert writer.get("/api/v1/sessions").json() == []
    # stopping a stopped session changes nothing
    assert writer.delete(f"/api/v1/labs/{world.lab_id}/session").json()["state"] == "stopped"


def test_restart_queues_a_fresh_session_behind_the_old_one(world: SessionWorld) -> None:
    writer = world.api("write")
    first = writer.post(f"/api/v1/labs/{world.lab_id}/session").json()
    world.running(writer)
    restarted = writer.post(f"/api/v1/labs/{world.lab_id}/session/restart")
    assert restarted.status_code == 200, restarted.text
    second = restarted.json()
    assert second["job_id"] != first["job_id"] and second["state"] == "queued"
    world.running(writer)
    with world.database.session() as db:
        old = db.get(Job, first["job_id"])
        assert old is not None and old.status == "stopped"


def test_bad_starts_are_refused_and_write_nothing(world: SessionWorld) -> None:
    writer = world.api("write")
    url = f"/api/v1/labs/{world.lab_id}/session"
    unknown = writer.post(url, json={"flavor": "huge"})
    assert unknown.status_code == 422 and "No flavor 'huge'" in unknown.text
    too_big = writer.post(url, json={"flavor": "g2"})  # two GPUs on a one-GPU node
    assert too_big.status_code == 422 and "can never run on this node" in too_big.text
    assert writer.post(url, json={"flavor": 7}).status_code == 422
    assert writer.post("/api/v1/labs/999999/session").status_code == 404
    with world.database.session() as db:
        assert db.query(LabSession).count() == 0 and db.query(Job).count() == 0
    assert not (world.settings.data_dir / "jobs").exists() or not any(
        (world.settings.data_dir / "jobs").iterdir()
    )
    # a READ member, a stranger and anonymous are refused too
    assert world.api("read").post(url).status_code == 404
    assert world.api("stranger").post(url).status_code == 404
    assert world.api("anonymous").post(url).status_code == 401
    with world.database.session() as db:
        assert db.query(LabSession).count() == 0


def test_a_lab_with_a_live_session_cannot_be_deleted(world: SessionWorld) -> None:
    owner = world.api("own")
    owner.post(f"/api/v1/labs/{world.lab_id}/session")  # queued (no scheduler tick)
    refused = owner.delete(f"/api/v1/labs/{world.lab_id}")
    assert refused.status_code == 409 and "JupyterLab session" in refused.text
    assert owner.get(f"/api/v1/labs/{world.lab_id}").status_code == 200
    owner.delete(f"/api/v1/labs/{world.lab_id}/session")
    assert owner.delete(f"/api/v1/labs/{world.lab_id}").status_code == 204
    with world.database.session() as db:
        assert db.query(LabSession).count() == 0  # its session rows went with it
