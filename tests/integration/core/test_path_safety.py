"""Paths a job or a user controls are never followed out of their root: job file browsing,
the job's shown mlsteam.yml, TensorBoard log dirs; and what the platform writes is not
readable by others."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import artifacts
from labyard.jobs.service import job_dir
from labyard.tensorboard.models import TensorBoardInstance
from tests.factories import (
    WebClient,
    access_token_for,
    auth,
    make_job_row,
    make_job_with_scalars,
    make_users_fast,
)


def _two_projects(app: FastAPI, database: Database) -> tuple[dict[str, str], int, int]:
    """ana's headers, ana's project and eve's project (ana is not in eve's)."""
    users = make_users_fast(database, "ana", "eve")
    ana, eve = users["ana"].default_project_id, users["eve"].default_project_id
    assert ana is not None and eve is not None
    return auth(access_token_for(app, database, users["ana"])), ana, eve


def test_job_file_browsing_does_not_follow_links(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    headers, mine, theirs = _two_projects(app, database)
    other = make_job_row(database, settings, theirs, outputs={"secret.txt": b"eve's"})
    job = make_job_row(database, settings, mine, outputs={"model.pt": b"ok"})
    output, other_output = job_dir(settings, job) / "output", job_dir(settings, other) / "output"
    os.symlink(other_output / "secret.txt", output / "stolen.txt")
    os.symlink(other_output, output / "theirs")
    with WebClient(app) as client:
        listed = client.get(f"/api/v1/jobs/{job}/files", headers=headers)
        assert listed.status_code == 200
        assert [f["path"] for f in listed.json()["files"]] == ["model.pt"]
        for path in ("stolen.txt", "theirs/secret.txt"):
            got = client.get(f"/api/v1/jobs/{job}/files/{path}", headers=headers)
            assert got.status_code == 404, (path, got.status_code)
            assert b"eve's" not in got.content
        # the job swaps its whole output folder for a link to the other job's
        (output / "model.pt").unlink()
        for name in ("stolen.txt", "theirs"):
            (output / name).unlink()
        output.rmdir()
        os.symlink(other_output, output)
        listed = client.get(f"/api/v1/jobs/{job}/files", headers=headers)
        assert listed.status_code == 200 and listed.json()["files"] == []
        got = client.get(f"/api/v1/jobs/{job}/files/secret.txt", headers=headers)
        assert got.status_code == 404 and b"eve's" not in got.content
    assert (other_output / "secret.txt").read_bytes() == b"eve's"  # untouched


def test_a_jobs_config_link_is_not_read(database: Database, settings: Settings) -> None:
    users = make_users_fast(database, "ana")
    project = users["ana"].default_project_id
    assert project is not None
    job = make_job_row(database, settings, project)
    config = job_dir(settings, job) / "lab" / "mlsteam.yml"
    assert artifacts.config_text(settings, job) is not None
    secret = settings.data_dir / "not-the-jobs.txt"
    secret.write_text("server secret")
    config.unlink()
    os.symlink(secret, config)  # what a job can do to its own snapshot
    assert artifacts.config_text(settings, job) is None


def _tensorboards(database: Database) -> int:
    with database.session() as db:
        return int(db.scalar(select(func.count()).select_from(TensorBoardInstance)) or 0)


def test_tensorboard_refuses_a_job_logdir_that_links_elsewhere(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    headers, mine, theirs = _two_projects(app, database)
    other = make_job_with_scalars(database, settings, theirs, name="eves", tag="Secret/acc")
    job = make_job_with_scalars(database, settings, mine, name="mine")
    logdir, other_logdir = (job_dir(settings, j) / "output" / "tensorboard" for j in (job, other))
    # a link inside the log dir, leading to the other project's job
    os.symlink(other_logdir, logdir / "run2")
    with WebClient(app) as client:
        opened = client.post("/api/v1/tensorboards", json={"job_ids": [job]}, headers=headers)
        assert opened.status_code == 422, opened.text
        detail = opened.json()["detail"]
        assert detail == (f"Job {job}: Links leading outside the folder are not followed: 'run2'.")
        # the log dir itself made a link to the other job's
        for item in logdir.iterdir():
            item.unlink()
        logdir.rmdir()
        os.symlink(other_logdir, logdir)
        opened = client.post("/api/v1/tensorboards", json={"job_ids": [job]}, headers=headers)
        assert opened.status_code == 422, opened.text
        assert opened.json()["detail"] == (
            f"Job {job}'s output/tensorboard is a link; TensorBoard does not follow links out "
            "of a job's folder."
        )
        assert str(settings.data_dir) not in opened.text
    assert _tensorboards(database) == 0


MAKE_EVERYTHING = """
import sys
from pathlib import Path
from labyard.bootstrap import prepare
from labyard.config import Settings
from labyard.datasets import service as datasets
from labyard.db import Database
from labyard.labs import service as labs
from labyard.auth.models import User
from sqlalchemy import select

settings = Settings(data_dir=Path(sys.argv[1]), start_scheduler=False, admin_password="x" * 16)
database = Database(settings.resolved_database_url)
prepare(settings, database)
settings.resolved_secret_key
with database.session() as db:
    admin = db.scalars(select(User)).first()
    project = admin.default_project_id
    ds = datasets.create_dataset(db, settings, user=admin, name="mine", project_id=project)
    (datasets.dataset_dir(settings, ds) / "a.txt").write_bytes(b"data")
    datasets.make_folder(db, settings, user=admin, dataset_id=ds.id, path="", name="sub")
    labs.create_lab(db, settings, admin, project_id=project, name="lab1",
                    template="classification")
"""


def test_files_the_platform_creates_are_not_readable_by_others(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
    subprocess.run(
        [sys.executable, "-c", MAKE_EVERYTHING, str(data)],
        check=True,
        env={**env, "LABYARD_SECRET_KEY": ""},
        timeout=300,
    )
    seen, open_to_others = [], []
    for dirpath, dirnames, filenames in os.walk(data):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            seen.append(path.relative_to(data).as_posix())
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & (stat.S_IROTH | stat.S_IWOTH):
                open_to_others.append(f"{path.relative_to(data)} {stat.filemode(mode)}")
    assert {"labyard.db", "secret_key", "labs", "datasets"} <= set(seen)
    assert any(p.startswith("labs/") and p.endswith("mlsteam.yml") for p in seen)
    assert any(p.endswith("/a.txt") for p in seen)
    assert open_to_others == []
    assert stat.S_IMODE(data.stat().st_mode) & 0o066 == 0


def test_a_lab_move_that_would_carry_a_link_out_is_refused(
    database: Database, settings: Settings
) -> None:
    from labyard.errors import InvalidInput
    from labyard.labs import files as lab_files
    from labyard.labs import service as labs_service

    users = make_users_fast(database, "ana")
    with database.session() as db:
        lab = labs_service.create_lab(
            db, settings, users["ana"], project_id=users["ana"].default_project_id, name="l1"
        )
        root = lab_files.lab_root(settings, lab)
        (root / "a" / "b").mkdir(parents=True)
        (root / "x").mkdir()
        os.symlink("../../x", root / "a" / "b" / "up")  # made in the lab's terminal
        before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
        with pytest.raises(InvalidInput) as refused:
            lab_files.rename(settings, lab, "a/b", "b")
        assert refused.value.message.startswith(
            "This move would make links point outside the folder: 'a/b/up'."
        )
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before
        assert lab_files.rename(settings, lab, "a/b", "a/c") == "a/c"  # same depth: allowed
        assert (root / "a" / "c" / "up").resolve() == (root / "x").resolve()
