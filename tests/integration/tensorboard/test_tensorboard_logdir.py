"""The log-dir form: a folder chosen inside a lab's or a job's files, checked to stay there;
and the refusals of bad open requests (nothing started, nothing written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labyard.auth.models import User
from labyard.labs import service as labs_service
from tests.factories import make_job_with_scalars, session_client, write_scalars


@pytest.fixture
def lab_dir(tb: Any, tmp_path: Path) -> tuple[int, Path]:
    """The owner's lab with a `runs/` log dir, a file, and a link pointing outside."""
    with tb.database.session() as db:
        owner = db.get(User, tb.owner.id)
        lab = labs_service.create_lab(
            db, tb.settings, owner, project_id=tb.project_id, name="lab1", flavor="cpu"
        )
        lab_id = lab.id
    folder = labs_service.lab_dir(tb.settings, lab_id)
    write_scalars(folder / "runs", "Val/acc")
    outside = tmp_path / "outside"
    write_scalars(outside, "Secret/value")
    (folder / "escape").symlink_to(outside, target_is_directory=True)
    return lab_id, folder


BAD_PATHS = [
    ("../", 404),
    ("../../..", 404),
    ("runs/../../..", 404),
    ("/etc", 404),
    ("escape", 404),
    ("escape/", 404),
    ("nonexistent", 404),
    ("runs\\..\\..", 404),
    ("runs\x00", 404),
    ("mlsteam.yml", 422),
]


def test_logdir_form_refuses_escapes(tb: Any, lab_dir: tuple[int, Path]) -> None:
    lab_id, folder = lab_dir
    with session_client(tb.app, tb.database, tb.owner) as owner:
        for path, expected in BAD_PATHS:
            form = {"source": "lab", "source_id": str(lab_id), "path": path}
            page = owner.hx("POST", "/tensorboards/logdir", data=form)
            assert page.status_code == expected, (path, page.text)
            body = {"logdir": {"source": "lab", "source_id": lab_id, "path": path}}
            api = owner.hx("POST", "/api/v1/tensorboards", json=body)
            assert api.status_code == expected, (path, api.text)
        assert tb.count() == 0  # nothing started, nothing written
        assert "Secret" not in str(list((tb.settings.data_dir).rglob("*")))

        opened = owner.hx(
            "POST",
            "/tensorboards/logdir",
            data={"source": "lab", "source_id": lab_id, "path": "runs"},
        )
        assert opened.status_code == 204
        tb_id = int(opened.headers["HX-Redirect"].rsplit("/", 1)[1])
        assert tb.instance(tb_id).logdir_spec == {"lab-lab1-runs": str((folder / "runs").resolve())}


def test_logdir_in_job_files_reuses_the_jobs_tensorboard(tb: Any) -> None:
    with session_client(tb.app, tb.database, tb.owner) as owner:
        by_job = owner.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]}).json()
        body = {"logdir": {"source": "job", "source_id": tb.job_id, "path": "output/tensorboard"}}
        by_dir = owner.hx("POST", "/api/v1/tensorboards", json=body).json()
        assert by_dir["id"] == by_job["id"] and tb.count() == 1


def test_other_users_files_are_not_found(tb: Any, lab_dir: tuple[int, Path]) -> None:
    lab_id, _ = lab_dir
    with session_client(tb.app, tb.database, tb.stranger) as stranger:
        for source, source_id in (("lab", lab_id), ("job", tb.job_id)):
            form = {"source": source, "source_id": str(source_id), "path": ""}
            assert stranger.hx("POST", "/tensorboards/logdir", data=form).status_code == 404
        assert tb.count() == 0


def test_bad_open_requests(tb: Any) -> None:
    other_project_job = make_job_with_scalars(
        tb.database, tb.settings, tb.stranger.default_project_id, name="theirs"
    )
    with session_client(tb.app, tb.database, tb.owner) as owner:
        api = "/api/v1/tensorboards"
        assert owner.hx("POST", api, json={"job_ids": []}).status_code == 422
        assert owner.hx("POST", api, json={}).status_code == 422
        both = {"job_ids": [tb.job_id], "sweep_id": 1}
        assert owner.hx("POST", api, json=both).status_code == 422
        assert owner.hx("POST", api, json={"job_ids": [999999]}).status_code == 404
        assert owner.hx("POST", api, json={"sweep_id": 999999}).status_code == 404
        mixed = owner.hx("POST", api, json={"job_ids": [tb.job_id, other_project_job]})
        assert mixed.status_code == 404  # the stranger's job is not even visible
        bad_id = owner.hx("POST", "/tensorboards/open", data={"job_ids": "1, x"})
        assert bad_id.status_code == 422 and "is not a job id" in bad_id.text
        source = {"source": "dataset", "source_id": "1", "path": ""}
        assert owner.hx("POST", "/tensorboards/logdir", data=source).status_code == 422
        assert tb.count() == 0
