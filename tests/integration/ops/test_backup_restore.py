"""`labyard backup` while a real local job writes its log, metrics and weights (and with
registered weights), then
`labyard restore` into a fresh data folder and a fresh database (SQLite, or PostgreSQL in
the suite's PostgreSQL pass): every table and file comes back, and the pages answer."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from labyard.app import create_app
from labyard.config import Settings
from labyard.datasets import service as dataset_service
from labyard.db import Database
from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job, MetricPoint
from labyard.jobs.scheduler import Scheduler
from labyard.labs import service as labs_service
from labyard.ops.backup import backup
from labyard.ops.manifest import MANIFEST_NAME, read_manifest
from labyard.ops.restore import restore
from labyard.weights.register import register_weights
from tests.factories import ADMIN_PASSWORD, WebClient, make_job_flavors, make_users_fast
from tests.integration.jobs.conftest import run_until, write_lab
from tests.integration.jobs.test_local_jobs import FOUR_GPUS
from tests.integration.ops.conftest import table_rows, tree_hashes, tree_modes

STREAM = """\
import os, time
out = os.environ["MLSTEAM_OUTPUT_DIR"]
with open(os.path.join(out, "weights.bin"), "wb") as fh:
    fh.write(bytes(range(256)) * 800)
step = 0
with open(os.path.join(out, "metrics.csv"), "a") as metrics:
    while not os.path.exists(os.path.join(out, "stop")):
        step += 1
        print(f"Train step={step} loss={1.0 / step:.6f}", flush=True)
        metrics.write(f"{step},{1.0 / step}\\n")
        metrics.flush()
        time.sleep(0.01)
"""
GROWING = ("job.log", "output/metrics.csv")  # what the live job appends to


def _installation(database: Database, settings: Settings, tmp_path: Path) -> tuple[int, int]:
    """A lab, a dataset with a file, a finished job and a live job streaming metrics into
    the dataset-attached job folder; (finished job id, live job id)."""
    make_job_flavors(database)
    ana = make_users_fast(database, "ana")["ana"]
    with database.session() as db:
        user = db.get(jobs_service.User, ana.id)
        assert user is not None and user.default_project_id is not None
        project = user.default_project_id
        lab = labs_service.create_lab(db, settings, user, project_id=project, name="streamer")
        dataset = dataset_service.create_dataset(
            db, settings, user=user, name="shards", project_id=project
        )
        folder = dataset_service.dataset_dir(settings, dataset)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "shard-0.bin").write_bytes(b"\x00\x01" * 5000)
        dataset_service.refresh_stats(db, settings, dataset)
        lab_id, mount = lab.id, jobs_service.DatasetInput("shards", folder, dataset.id)
    code = labs_service.lab_dir(settings, lab_id)
    write_lab(code, command=f"{sys.executable} stream.py")
    (code / "stream.py").write_text(STREAM)
    ids = []
    for lab_dir, name in ((write_lab(tmp_path / "plain"), "plain"), (code, "stream")):
        with database.session() as db:
            user = db.get(jobs_service.User, ana.id)
            assert user is not None
            sweep = jobs_service.create_sweep(
                db,
                user,
                settings=settings,
                project_id=project,
                lab_dir=lab_dir,
                flavor="tiny",
                inventory=FOUR_GPUS,
                name=name,
                datasets=[mount],
                lab_id=lab_id if name == "stream" else None,
            )
            ids.append(db.query(Job).filter_by(sweep_id=sweep.id).one().id)
    return ids[0], ids[1]


@pytest.fixture
def streaming(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler: Callable[..., Scheduler]
) -> tuple[Scheduler, int]:
    """The installation with its first job finished and the live one streaming, its lines
    being ingested; (the scheduler, the live job's id)."""
    finished, live = _installation(database, settings, tmp_path)
    scheduler = make_scheduler(inventory=FOUR_GPUS)

    def ready(jobs: list[Job]) -> bool:
        by_id = {job.id: job for job in jobs}
        return by_id[finished].status == "succeeded" and by_id[live].log_parsed_offset > 0

    run_until(scheduler, database, ready)
    _register_weights(database, settings, finished)
    return scheduler, live


def _register_weights(database: Database, settings: Settings, job_id: int) -> None:
    """Weights `plain-model` from the finished job's output (a pickled state dict's bytes)."""
    model = jobs_service.job_dir(settings, job_id) / "output" / "model.pt"
    model.write_bytes(b"\x80\x04" + bytes(range(256)) * 40)
    with database.sessionmaker() as db:  # as a request's session: it commits midway
        ana = db.query(jobs_service.User).filter_by(username="ana").one()
        register_weights(db, settings, user=ana, job_id=job_id, name="plain-model", path="model.pt")
        db.commit()


def _answers(settings: Settings, live: int) -> None:
    """The restored installation serves: health, the admin's login, datasets, labs, jobs."""
    database = Database(settings.resolved_database_url)
    try:
        with WebClient(create_app(settings, database=database)) as client:
            assert client.get("/healthz").status_code == 200
            client.login("admin", ADMIN_PASSWORD)
            for path in ("/datasets", "/labs", f"/jobs/{live}", "/api/v1/jobs", "/api/v1/labs"):
                assert client.get(path).status_code == 200, path
            names = {d["name"] for d in client.get("/api/v1/datasets").json()}
            assert "shards" in names
            [weights] = client.get("/api/v1/weights").json()
            assert weights["name"] == "plain-model"
            got = client.get(f"/api/v1/weights/{weights['id']}/download")
            assert got.status_code == 200 and got.content == b"\x80\x04" + bytes(range(256)) * 40
            assert client.get(f"/api/v1/jobs/{live}").json()["status"] == "running"
    finally:
        database.dispose()


@pytest.mark.timeout(180)
def test_backup_while_a_job_writes_then_restore_on_a_fresh_installation(
    settings: Settings, fresh: Settings, tmp_path: Path, streaming: tuple[Scheduler, int]
) -> None:
    _, live = streaming
    live_dir = jobs_service.job_dir(settings, live)
    before = {name: (live_dir / name).stat().st_size for name in GROWING}

    manifest = backup(settings, tmp_path / "backup")  # the job goes on writing meanwhile

    restore(settings=fresh, source=tmp_path / "backup")
    assert read_manifest(tmp_path / "backup").files.count == manifest.files.count > 3000
    # the scheduler did not tick: the database is as the snapshot saw it, row for row
    assert table_rows(fresh.resolved_database_url) == table_rows(settings.resolved_database_url)
    source, restored = tree_hashes(settings.data_dir), tree_hashes(fresh.data_dir)
    moving = {f"jobs/{live}/{name}" for name in GROWING}
    assert {k: v for k, v in restored.items() if k not in moving} == {
        k: v for k, v in source.items() if k not in moving
    }
    for name in GROWING:  # copied after the snapshot: at least what it held then, a prefix now
        copy = (fresh.data_dir / "jobs" / str(live) / name).read_bytes()
        assert len(copy) >= before[name]
        assert (live_dir / name).read_bytes().startswith(copy)
    assert (live_dir / "job.log").stat().st_size > before["job.log"]  # it really kept writing
    link = fresh.data_dir / "jobs" / str(live) / "input" / "shards"
    assert link.readlink().is_relative_to(fresh.data_dir) and (link / "shard-0.bin").is_file()
    modes = tree_modes(settings.data_dir)
    assert {k: v for k, v in tree_modes(fresh.data_dir).items() if k in modes} == {
        # the database's files and scratch folders (copies in progress) are not backed up
        k: v
        for k, v in modes.items()
        if not k.startswith(("labyard.db", "weights/.work"))
    }
    assert fresh.data_dir.stat().st_mode & 0o077 == 0
    _answers(fresh, live)


@pytest.mark.timeout(180)
def test_a_backup_taken_while_the_database_changes_is_consistent(
    database: Database,
    settings: Settings,
    fresh: Settings,
    tmp_path: Path,
    streaming: tuple[Scheduler, int],
) -> None:
    scheduler, live = streaming
    stop = threading.Event()

    def tick() -> None:
        while not stop.is_set():
            scheduler.tick()  # ingests the live job's new lines: the database changes

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        backup(settings, tmp_path / "backup")
    finally:
        stop.set()
        ticker.join()
    assert (tmp_path / "backup" / MANIFEST_NAME).is_file()
    restore(settings=fresh, source=tmp_path / "backup")
    restored = Database(fresh.resolved_database_url)
    with restored.session() as db:
        job = db.get(Job, live)
        assert job is not None
        points = db.query(MetricPoint).filter_by(job_id=live).count()
        offset = job.log_parsed_offset
    restored.dispose()
    log = (fresh.data_dir / "jobs" / str(live) / "job.log").read_bytes()
    # the files are at least as new as the rows: every ingested line is in the restored log
    assert len(log) >= offset and log[:offset].count(b"Train step=") == points > 0
    with database.session() as db:
        assert db.query(MetricPoint).filter_by(job_id=live).count() > points
