"""Datasets through the JSON API: create, list, get, delete, the permission matrix, public
read-only datasets, the seeded `digits`, and the in-use registry the jobs domain uses."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.datasets import service
from labyard.db import Database
from labyard.seed import SAMPLE_DATASETS
from tests.factories import ADMIN_PASSWORD, WebClient, auth, bearer_token
from tests.integration.datasets.conftest import Team, dataset_root, tree, upload


def test_create_list_get_delete(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    created = api.post(
        "/api/v1/datasets",
        json={"name": "mnist", "project_id": team.project_id},
        headers=team.writer,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "mnist" and body["id"] and body["created_by"] == "will"
    names = {d["name"] for d in api.get("/api/v1/datasets", headers=team.reader).json()}
    assert {"mnist", "ds", "digits"} <= names
    assert api.get(f"/api/v1/datasets/{body['id']}", headers=team.reader).json()["id"] == body["id"]
    root = dataset_root(settings, database, body["id"])
    assert root.is_dir()
    assert api.delete(f"/api/v1/datasets/{body['id']}", headers=team.writer).status_code == 204
    assert api.get(f"/api/v1/datasets/{body['id']}", headers=team.owner).status_code == 404
    assert not root.exists()


def test_name_is_unique_per_project_and_checked(api: WebClient, team: Team) -> None:
    again = api.post(
        "/api/v1/datasets", json={"name": "ds", "project_id": team.project_id}, headers=team.owner
    )
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    for bad in ("", "../x", "a/b", ".hidden", "x" * 101, "name\u202eevil"):
        response = api.post(
            "/api/v1/datasets",
            json={"name": bad, "project_id": team.project_id},
            headers=team.owner,
        )
        assert response.status_code == 422, bad
    names = [d["name"] for d in api.get("/api/v1/datasets", headers=team.owner).json()]
    samples = {sample.name for sample in SAMPLE_DATASETS}
    assert names.count("ds") == 1 and len([n for n in names if n not in samples]) == 1


def test_permission_matrix(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    ds = team.dataset_id
    # READ members browse and download, but do not upload, change or delete
    assert api.get(f"/api/v1/datasets/{ds}/files", headers=team.reader).status_code == 200
    assert upload(api, team.writer, ds, "a.txt", b"hello").status_code == 201
    download = api.get(
        f"/api/v1/datasets/{ds}/download", params={"path": "a.txt"}, headers=team.reader
    )
    assert download.status_code == 200 and download.content == b"hello"
    refused = [
        upload(api, team.reader, ds, "b.txt", b"x"),
        api.post(f"/api/v1/datasets/{ds}/folders", json={"name": "f"}, headers=team.reader),
        api.post(
            f"/api/v1/datasets/{ds}/move",
            json={"path": "a.txt", "name": "c.txt"},
            headers=team.reader,
        ),
        api.delete(f"/api/v1/datasets/{ds}/files", params={"path": "a.txt"}, headers=team.reader),
        api.post(f"/api/v1/datasets/{ds}/extract", json={"path": "a.txt"}, headers=team.reader),
        api.delete(f"/api/v1/datasets/{ds}", headers=team.reader),
        api.post(
            "/api/v1/datasets",
            json={"name": "n", "project_id": team.project_id},
            headers=team.reader,
        ),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    # non-members learn nothing: 404 everywhere
    for response in (
        api.get(f"/api/v1/datasets/{ds}", headers=team.outsider),
        api.get(f"/api/v1/datasets/{ds}/files", headers=team.outsider),
        api.get(f"/api/v1/datasets/{ds}/download", params={"path": "a.txt"}, headers=team.outsider),
        upload(api, team.outsider, ds, "b.txt", b"x"),
        api.delete(f"/api/v1/datasets/{ds}", headers=team.outsider),
        api.get(f"/api/v1/datasets/{ds}/insight", headers=team.outsider),
    ):
        assert response.status_code == 404
    assert "ds" not in {
        d["name"] for d in api.get("/api/v1/datasets", headers=team.outsider).json()
    }
    assert tree(dataset_root(settings, database, ds)) == ["a.txt"]
    assert api.get(f"/api/v1/datasets/{ds}").status_code == 401


def _digits_id(api: WebClient, headers: dict[str, str]) -> int:
    return next(
        d["id"]
        for d in api.get("/api/v1/datasets", headers=headers).json()
        if d["name"] == "digits"
    )


def test_digits_is_seeded_public_read_only_and_recognised(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    digits = _digits_id(api, team.outsider)
    body = api.get(f"/api/v1/datasets/{digits}", headers=team.outsider).json()
    assert body["is_public"] and body["read_only"] and body["project_id"] is None
    assert body["file_count"] == 1797
    insight = api.get(f"/api/v1/datasets/{digits}/insight", headers=team.outsider).json()
    assert insight["recognised"] and insight["classes"] == [str(d) for d in range(10)]
    splits = {s["name"]: s["images"] for s in insight["splits"]}
    assert splits["train"] + splits["test"] == 1797
    assert insight["sizes"][0][0] == "8x8" and insight["modes"][0][0] == "L"
    # seeding again does nothing
    with database.session() as db:
        assert service.seed_sample_datasets(db, settings) == []


def test_public_dataset_refuses_every_write_even_for_admins(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    admin = auth(bearer_token(api, "admin", ADMIN_PASSWORD))
    digits = _digits_id(api, admin)
    before = tree(dataset_root(settings, database, digits))
    for headers in (team.owner, admin):
        responses = [
            upload(api, headers, digits, "x.txt", b"x"),
            api.post(
                f"/api/v1/datasets/{digits}/uploads",
                headers={
                    **headers,
                    "Tus-Resumable": "1.0.0",
                    "Upload-Length": "1",
                    "Upload-Metadata": "filename eC50eHQ=",
                },
            ),
            api.post(f"/api/v1/datasets/{digits}/folders", json={"name": "f"}, headers=headers),
            api.post(
                f"/api/v1/datasets/{digits}/move",
                json={"path": "train/0", "name": "zero"},
                headers=headers,
            ),
            api.delete(
                f"/api/v1/datasets/{digits}/files", params={"path": "train"}, headers=headers
            ),
            api.post(f"/api/v1/datasets/{digits}/extract", json={"path": "train"}, headers=headers),
        ]
        for response in responses:
            assert response.status_code == 403, response.text
            assert "public and read-only" in response.json()["detail"]
    assert api.delete(f"/api/v1/datasets/{digits}", headers=team.owner).status_code == 403
    assert tree(dataset_root(settings, database, digits)) == before
    # the files themselves are read-only on disk too (what a local job sees)
    root = dataset_root(settings, database, digits)
    assert not (root.stat().st_mode & 0o222)


def test_only_admins_create_or_publish_public_datasets(api: WebClient, team: Team) -> None:
    refused = api.post("/api/v1/datasets", json={"name": "pub", "public": True}, headers=team.owner)
    assert refused.status_code == 403
    assert (
        api.post(f"/api/v1/datasets/{team.dataset_id}/publish", headers=team.owner).status_code
        == 403
    )
    admin = auth(bearer_token(api, "admin", ADMIN_PASSWORD))
    upload(api, team.owner, team.dataset_id, "a.txt", b"a")
    published = api.post(f"/api/v1/datasets/{team.dataset_id}/publish", headers=admin)
    assert published.status_code == 200 and published.json()["is_public"]
    assert upload(api, team.owner, team.dataset_id, "b.txt", b"b").status_code == 403
    # now everyone can read it
    files = api.get(f"/api/v1/datasets/{team.dataset_id}/files", headers=team.outsider).json()
    assert [f["name"] for f in files] == ["a.txt"]


@pytest.fixture
def busy_check() -> object:
    """A registered in-use check that says dataset ids in `busy` are used by a job."""
    busy: set[int] = set()

    def check(db: Session, dataset_id: int) -> str | None:
        return "job 7 (running) uses it" if dataset_id in busy else None

    service.IN_USE_CHECKS.connect(check)
    yield busy
    service.IN_USE_CHECKS.disconnect(check)


def test_delete_is_refused_while_a_job_uses_the_dataset(
    api: WebClient, team: Team, busy_check: set[int], settings: Settings, database: Database
) -> None:
    upload(api, team.owner, team.dataset_id, "a.txt", b"a")
    busy_check.add(team.dataset_id)
    refused = api.delete(f"/api/v1/datasets/{team.dataset_id}", headers=team.owner)
    assert refused.status_code == 409
    assert "job 7 (running) uses it" in refused.json()["detail"]
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["a.txt"]
    busy_check.clear()
    assert api.delete(f"/api/v1/datasets/{team.dataset_id}", headers=team.owner).status_code == 204


def test_find_dataset_by_name_prefers_the_projects_own(
    api: WebClient, team: Team, database: Database
) -> None:
    api.post(
        "/api/v1/datasets",
        json={"name": "digits", "project_id": team.project_id},
        headers=team.owner,
    )
    from labyard.auth.models import User

    with database.session() as db:
        from sqlalchemy import select

        ana = db.scalar(select(User).where(User.username == "ana"))
        olga = db.scalar(select(User).where(User.username == "olga"))
        assert ana is not None and olga is not None
        own = service.find_dataset_by_name(db, ana, "digits", team.project_id)
        assert own is not None and own.project_id == team.project_id
        public = service.find_dataset_by_name(db, olga, "digits", olga.default_project_id)
        assert public is not None and public.is_public
        assert service.find_dataset_by_name(db, olga, "ds", olga.default_project_id) is None
