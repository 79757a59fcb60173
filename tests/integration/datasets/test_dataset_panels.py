"""The dataset page's panels that follow background work: the insight fragment, the tasks
fragment (which polls while a task runs and then fires `dataset-changed`), and who may read a
task's status."""

from __future__ import annotations

from fastapi import FastAPI

from labyard.config import Settings
from labyard.datasets.models import DatasetTask
from labyard.db import Database
from tests.factories import (
    WebClient,
    access_token_for,
    add_member,
    auth,
    make_dataset,
    make_users_fast,
    session_client,
)
from tests.integration.datasets.conftest import Team, dataset_root, tree


def _queued_task(database: Database, dataset_id: int, source: str = "a.zip") -> int:
    """A task row the runner was never given: it stays queued."""
    with database.session() as db:
        task = DatasetTask(dataset_id=dataset_id, source_path=source, target_path="")
        db.add(task)
        db.flush()
        return task.id


def test_insight_fragment_follows_the_files(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    users = make_users_fast(database, "ana", "rita", "olga")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    add_member(database, project_id, users["rita"], "READ")
    ds = make_dataset(database, settings, users["ana"], project_id, "pets")
    with session_client(app, database, users["ana"]) as ana:
        before = ana.hx("GET", f"/datasets/{ds}/insight")
        assert before.status_code == 200 and "Format not recognised" in before.text
        assert 'hx-trigger="dataset-changed from:body"' in before.text
        assert 'id="dropzone"' not in before.text  # the panel alone
        root = dataset_root(settings, database, ds)
        for split in ("train", "test"):
            (root / split / "cat").mkdir(parents=True)
            (root / split / "cat" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        after = ana.hx("GET", f"/datasets/{ds}/insight")
        assert "Classification format: 1 classes." in after.text
        assert ana.hx("GET", "/datasets/999999/insight").status_code == 404
        assert ana.hx("GET", "/datasets/abc/insight").status_code == 422
    with session_client(app, database, users["rita"]) as rita:
        assert rita.hx("GET", f"/datasets/{ds}/insight").status_code == 200
    with session_client(app, database, users["olga"]) as olga:
        hidden = olga.hx("GET", f"/datasets/{ds}/insight")
        assert hidden.status_code == 404 and "pets" not in hidden.text
    with WebClient(app) as anonymous:
        assert anonymous.get(f"/datasets/{ds}/insight").status_code in (303, 307)
    assert [p for p in tree(root) if p.endswith(".png")] == ["test/cat/1.png", "train/cat/1.png"]


def test_tasks_fragment_polls_while_a_task_runs_then_fires_changed(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    users = make_users_fast(database, "ana")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    ds = make_dataset(database, settings, users["ana"], project_id, "d")
    with session_client(app, database, users["ana"]) as ana:
        idle = ana.hx("GET", f"/datasets/{ds}/tasks")
        assert idle.status_code == 200 and idle.headers["HX-Trigger"] == "dataset-changed"
        assert "every 1s" not in idle.text
        task_id = _queued_task(database, ds)
        busy = ana.hx("GET", f"/datasets/{ds}/tasks")
        assert "HX-Trigger" not in busy.headers and "every 1s" in busy.text
        assert f'data-task-id="{task_id}"' in busy.text
        assert 'role="progressbar"' in busy.text and 'aria-valuenow="0"' in busy.text
        with database.session() as db:
            task = db.get(DatasetTask, task_id)
            assert task is not None
            task.status, task.message, task.total_entries = "done", "Extracted 7 entries.", 7
        done = ana.hx("GET", f"/datasets/{ds}/tasks")
        assert done.headers["HX-Trigger"] == "dataset-changed" and "every 1s" not in done.text
        assert 'data-task-status="done"' in done.text and 'aria-valuenow="100"' in done.text
        assert 'data-task-entries="7"' in done.text


def test_a_task_status_is_hidden_outside_its_project(
    api: WebClient, team: Team, app: FastAPI, database: Database, settings: Settings
) -> None:
    other = make_users_fast(database, "zoe")["zoe"]
    assert other.default_project_id is not None
    theirs = make_dataset(database, settings, other, other.default_project_id, "secret")
    their_task = _queued_task(database, theirs, "secret.zip")
    our_task = _queued_task(database, team.dataset_id)
    zoe = auth(access_token_for(app, database, other))
    assert api.get(f"/api/v1/dataset-tasks/{their_task}", headers=zoe).status_code == 200
    for headers in (team.reader, team.outsider, team.owner):  # members of another project
        hidden = api.get(f"/api/v1/dataset-tasks/{their_task}", headers=headers)
        assert hidden.status_code == 404 and "secret" not in hidden.text
    assert api.get(f"/api/v1/dataset-tasks/{our_task}", headers=team.reader).status_code == 200
    assert api.get(f"/api/v1/dataset-tasks/{our_task}", headers=team.outsider).status_code == 404
    missing = api.get("/api/v1/dataset-tasks/999999", headers=team.owner)
    assert missing.status_code == 404 and missing.json()["detail"] == "No such task."
    assert api.get("/api/v1/dataset-tasks/abc", headers=team.owner).status_code == 422
    assert api.get(f"/api/v1/dataset-tasks/{our_task}").status_code == 401
    with database.session() as db:  # nothing was changed by the refused reads
        task = db.get(DatasetTask, their_task)
        assert task is not None and (task.status, task.message) == ("queued", "")
    # and the page's tasks panel: an outsider learns nothing
    with session_client(app, database, other) as page:
        refused = page.hx("GET", f"/datasets/{team.dataset_id}/tasks")
        assert refused.status_code == 404 and "a.zip" not in refused.text
