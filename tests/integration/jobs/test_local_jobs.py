"""Real subprocess jobs through the sweep service and the scheduler (local executor)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.errors import InvalidInput, TooLarge
from labyard.jobs import metrics, service
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job, MetricPoint, Sweep
from tests.factories import make_users_fast
from tests.integration.jobs.conftest import all_final, run_until, write_lab

FOUR_GPUS = Inventory(gpus=("0", "1", "2", "3"), cpus=8, memory_mb=8192)


def submit(database: Database, settings: Settings, lab: Path, **kwargs: object) -> list[int]:
    """Create a sweep as user ana (made if missing); its job ids."""
    with database.session() as db:
        ana = db.query(service.User).filter_by(username="ana").one_or_none()
    if ana is None:
        ana = make_users_fast(database, "ana")["ana"]
    with database.session() as db:
        user = db.get(service.User, ana.id)
        assert user is not None
        kwargs.setdefault("flavor", "tiny")
        kwargs.setdefault("inventory", FOUR_GPUS)
        sweep = service.create_sweep(
            db,
            user,
            settings=settings,
            project_id=user.default_project_id,
            lab_dir=lab,
            **kwargs,  # type: ignore[arg-type]
        )
        return [j.id for j in db.query(Job).filter_by(sweep_id=sweep.id).order_by(Job.id)]


@pytest.mark.usefixtures("flavors")
def test_sweep_runs_real_jobs_with_metrics_progress_and_outputs(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    ids = submit(database, settings, lab, grid={"mode": ["ok", "fail"]})
    assert len(ids) == 2
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    jobs = run_until(scheduler, database, all_final)
    ok, failed = jobs
    assert (ok.status, ok.exit_code, ok.reason) == ("succeeded", 0, "")
    assert (failed.status, failed.exit_code) == ("failed", 3)
    assert "exited with code 3" in failed.reason
    assert ok.progress_fraction == 1.0 and ok.progress_line == "Progress epoch=1/1 step=3/3"
    log = (service.job_dir(settings, ok.id) / "job.log").read_text()
    assert "ARGS ['--mode', 'ok']" in log
    assert log.splitlines()[0][:4].isdigit() and "Z ARGS" in log.splitlines()[0]
    assert (service.job_dir(settings, ok.id) / "output" / "done.txt").read_text() == "done"
    with database.session() as db:
        names = {s["name"] for s in metrics.series_names(db, ok.id)}
        assert names == {"Train_loss", "Train_acc", "Validation_loss"}
        loss = metrics.read_series(db, ok.id, "Train_loss", 1000)
        assert loss == [(1.0, 1.0), (2.0, 0.5), (3.0, 0.3333)]
        # the garbage line made no point; the scheduler ingested each line once
        assert db.query(MetricPoint).filter_by(job_id=ok.id).count() == 7


@pytest.mark.usefixtures("flavors")
def test_lab_is_snapshotted_and_job_yaml_has_one_value_per_param(
    database: Database, settings: Settings, lab: Path
) -> None:
    ids = submit(database, settings, lab, grid={"mode": ["ok", "fail"]})
    (lab / "job.py").write_text("raise SystemExit('edited after submit')")
    for job_id, mode in zip(ids, ["ok", "fail"], strict=True):
        snap = service.job_dir(settings, job_id) / "lab"
        assert "edited after submit" not in (snap / "job.py").read_text()
        assert f"mode: {mode}\n" in (snap / "mlsteam.yml").read_text()


@pytest.mark.usefixtures("flavors")
@pytest.mark.parametrize("value", ["$(id)", "; rm -rf ~", "--privileged", "a b\nc", "`touch x`"])
def test_argument_injection_arrives_as_one_literal_argument(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler, value: str
) -> None:
    lab = write_lab(tmp_path / "lab", params="  mode: [ok]\n  evil: x\n")
    [job_id] = submit(database, settings, lab, grid={"evil": [value]})
    run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final)
    log = (service.job_dir(settings, job_id) / "job.log").read_text()
    assert f"ARGS {['--mode', 'ok', '--evil', value]!r}" in log
    assert not (service.job_dir(settings, job_id) / "lab" / "x").exists()


@pytest.mark.usefixtures("flavors")
def test_grid_over_the_limit_is_refused_and_nothing_is_written(
    database: Database, settings: Settings, lab: Path
) -> None:
    settings.max_grid_size = 3
    with pytest.raises(TooLarge, match="makes 4 jobs; the limit is 3"):
        submit(database, settings, lab, grid={"mode": ["a", "b", "c", "d"]})
    with database.session() as db:
        assert db.query(Job).count() == 0 and db.query(Sweep).count() == 0
    assert not (settings.data_dir / "jobs").exists() or not any(
        (settings.data_dir / "jobs").iterdir()
    )


@pytest.mark.usefixtures("flavors")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flavor": "g2", "inventory": Inventory(("0",), 8, 8192)}, "needs 2 GPU"),
        ({"flavor": "nope"}, "No flavor"),
        ({"grid": {"unknown": [1]}}, "no param 'unknown'"),
        ({"grid": {"mode": []}}, "at least one value"),
    ],
)
def test_bad_submissions_are_refused_with_a_reason(
    database: Database, settings: Settings, lab: Path, kwargs: dict, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        submit(database, settings, lab, **kwargs)
    with database.session() as db:
        assert db.query(Job).count() == 0


@pytest.mark.usefixtures("flavors")
def test_stop_sends_sigterm_then_the_job_cleans_up(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    [job_id] = submit(database, settings, lab, grid={"mode": ["sleep"]})
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    run_until(scheduler, database, lambda js: "sleeping" in _log(settings, job_id))
    with database.session() as db:
        service.stop_job(db, _owner(db, job_id), job_id)
    [job] = run_until(scheduler, database, all_final)
    assert (job.status, job.reason, job.exit_code) == ("stopped", "stopped by user", 42)
    assert "got SIGTERM, cleaning up" in _log(settings, job_id)


@pytest.mark.usefixtures("flavors")
def test_stop_kills_a_job_that_ignores_sigterm_after_the_grace_period(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    settings.stop_grace_seconds = 0.5
    [job_id] = submit(database, settings, lab, grid={"mode": ["stubborn"]})
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    run_until(scheduler, database, lambda js: "ignoring SIGTERM" in _log(settings, job_id))
    with database.session() as db:
        service.stop_job(db, _owner(db, job_id), job_id)
    [job] = run_until(scheduler, database, all_final)
    assert (job.status, job.exit_code) == ("stopped", 137)


@pytest.mark.usefixtures("flavors")
def test_retry_and_delete(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    [job_id] = submit(database, settings, lab, grid={"mode": ["fail"]})
    run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final)
    with database.session() as db:
        new = service.retry_job(db, _owner(db, job_id), job_id, settings=settings)
        new_id = new.id
        assert new.status == "queued" and new.params == {"mode": "fail"}
    assert (service.job_dir(settings, new_id) / "lab" / "job.py").is_file()
    with database.session() as db:
        service.delete_job(db, _owner(db, job_id), job_id, settings=settings)
    assert not service.job_dir(settings, job_id).exists()
    with database.session() as db:
        assert db.get(Job, job_id) is None
        assert db.query(MetricPoint).filter_by(job_id=job_id).count() == 0


def _owner(db, job_id: int):  # type: ignore[no-untyped-def]
    job = db.get(Job, job_id)
    return db.get(service.User, job.created_by_id)


def _log(settings: Settings, job_id: int) -> str:
    path = service.job_dir(settings, job_id) / "job.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.usefixtures("flavors")
def test_a_dataset_used_by_a_queued_job_cannot_be_deleted(
    database: Database, settings: Settings, lab: Path, make_scheduler
) -> None:
    from labyard.datasets import service as datasets

    ana = make_users_fast(database, "ana")["ana"]
    with database.session() as db:
        user = db.get(service.User, ana.id)
        ds = datasets.create_dataset(
            db,
            settings,
            user=user,
            name="mnist",  # type: ignore[arg-type]
            project_id=ana.default_project_id,
        )
        ds_id, folder = ds.id, datasets.dataset_dir(settings, ds)
    [job_id] = submit(
        database, settings, lab, datasets=[service.DatasetInput("mnist", folder, ds_id)]
    )
    assert (service.job_dir(settings, job_id) / "lab").is_dir()
    with database.session() as db, pytest.raises(service.Conflict, match=f"job {job_id} uses it"):
        datasets.delete_dataset(db, settings, user=db.get(service.User, ana.id), dataset_id=ds_id)  # type: ignore[arg-type]
    assert folder.is_dir()
    run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final)
    assert (service.job_dir(settings, job_id) / "input" / "mnist").resolve() == folder.resolve()
    with database.session() as db:
        datasets.delete_dataset(db, settings, user=db.get(service.User, ana.id), dataset_id=ds_id)  # type: ignore[arg-type]


@pytest.mark.usefixtures("flavors")
def test_plain_python_in_the_command_is_the_platforms_interpreter(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler, monkeypatch
) -> None:
    """`command: python train.py` must run where Labyard (and torch) is installed, even when
    the server was started as `.venv/bin/labyard serve` with another `python` first on PATH."""
    decoy = tmp_path / "decoy-bin"
    decoy.mkdir()
    (decoy / "python").write_text("#!/bin/sh\necho 'decoy python'; exit 9\n")
    (decoy / "python").chmod(0o755)
    monkeypatch.setenv("PATH", f"{decoy}{os.pathsep}{os.environ.get('PATH', '')}")
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "probe.py").write_text("import sys\nprint('PREFIX', sys.prefix)\n")
    (lab / "mlsteam.yml").write_text("command: python probe.py\nparams: {}\n")
    submit(database, settings, lab)
    [job] = run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final)
    log = (service.job_dir(settings, job.id) / "job.log").read_text()
    assert job.status == "succeeded", log
    assert f"PREFIX {sys.prefix}" in log
