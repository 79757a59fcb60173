"""Labs through the API: the catalog, create (template or blank), name rules, delete."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from labyard.jobs.models import Job
from labyard.labs.models import Lab
from labyard.labs.service import LAB_NAME_RULE, lab_dir, labs_root
from tests.integration.labs.conftest import LabWorld


def _lab_count(world: LabWorld) -> int:
    with world.database.session() as db:
        return db.scalar(select(func.count()).select_from(Lab)) or 0


def test_templates_catalog_lists_classification(world: LabWorld) -> None:
    response = world.api.get("/api/v1/templates", headers=world.owner_headers)
    assert response.status_code == 200
    by_name = {t["name"]: t for t in response.json()}
    assert by_name["classification"]["title"] == "Image Classification"
    assert by_name["classification"]["default_datasets"] == ["digits"]
    assert by_name["classification"]["default_flavor"] == "cpu"


def test_lab_from_template_copies_files_and_attaches_digits(world: LabWorld) -> None:
    lab = world.create_lab("cls-1", template="classification")
    assert lab["template"] == "classification" and lab["flavor"] == "cpu"
    assert [d["name"] for d in lab["datasets"]] == ["digits"]
    assert lab["datasets"][0]["mount_path"] == "/mlsteam/input/digits"
    folder = lab_dir(world.settings, lab["id"])
    assert (folder / "mlsteam.yml").is_file() and (folder / "train.py").is_file()
    assert not (folder / "template.yml").exists()
    assert not list(folder.rglob("__pycache__"))
    listed = world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers).json()
    assert listed == lab


def test_blank_lab_has_a_runnable_starter(world: LabWorld) -> None:
    lab = world.create_lab("blank", flavor="cpu")
    assert lab["template"] is None and lab["datasets"] == []
    names = {p.name for p in lab_dir(world.settings, lab["id"]).iterdir()}
    assert names == {"mlsteam.yml", "main.py"}


def test_list_labs_by_project_and_across_projects(world: LabWorld) -> None:
    world.create_lab("a")
    world.create_lab("b")
    mine = world.api.get(
        "/api/v1/labs", params={"project_id": world.project_id}, headers=world.owner_headers
    )
    assert [lab["name"] for lab in mine.json()] == ["a", "b"]
    assert world.api.get("/api/v1/labs", headers=world.other_headers).json() == []


@pytest.mark.parametrize(
    "name",
    ["", "a" * 12, "has space", "dot.ted", "../up", "a/b", "naïve", "ta\tb", "x;rm", "ab\n"],
)
def test_bad_names_are_refused_with_the_rule_and_nothing_is_made(
    world: LabWorld, name: str
) -> None:
    body = {"name": name, "project_id": world.project_id}
    response = world.api.post("/api/v1/labs", json=body, headers=world.owner_headers)
    assert response.status_code == 422
    assert response.json() == {"detail": LAB_NAME_RULE, "field": "name"}
    assert _lab_count(world) == 0
    assert not labs_root(world.settings).exists() or not any(labs_root(world.settings).iterdir())


def test_good_names_at_the_limits(world: LabWorld) -> None:
    assert world.create_lab("a")["name"] == "a"
    assert world.create_lab("A_b-9" + "x" * 6)["name"] == "A_b-9xxxxxx"


def test_duplicate_name_in_project_is_a_conflict(world: LabWorld) -> None:
    world.create_lab("twin")
    body = {"name": "twin", "project_id": world.project_id}
    response = world.api.post("/api/v1/labs", json=body, headers=world.owner_headers)
    assert response.status_code == 409 and response.json()["field"] == "name"
    assert _lab_count(world) == 1


def test_same_name_in_another_project_is_fine(world: LabWorld) -> None:
    world.create_lab("twin")
    other_project = world.other.default_project_id
    body = {"name": "twin", "project_id": other_project}
    response = world.api.post("/api/v1/labs", json=body, headers=world.other_headers)
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("extra", "status", "field"),
    [
        ({"template": "nope"}, 404, "template"),
        ({"template": "../datasets"}, 404, "template"),
        ({"flavor": "huge"}, 422, "flavor"),
    ],
)
def test_unknown_template_or_flavor_is_refused(
    world: LabWorld, extra: dict[str, str], status: int, field: str
) -> None:
    body = {"name": "x", "project_id": world.project_id, **extra}
    response = world.api.post("/api/v1/labs", json=body, headers=world.owner_headers)
    assert response.status_code == status and response.json()["field"] == field
    assert _lab_count(world) == 0


def test_update_flavor_and_description(world: LabWorld) -> None:
    lab = world.create_lab("upd")
    response = world.api.patch(
        f"/api/v1/labs/{lab['id']}",
        json={"flavor": "small", "description": "hi"},
        headers=world.owner_headers,
    )
    assert response.status_code == 200
    assert (response.json()["flavor"], response.json()["description"]) == ("small", "hi")
    bad = world.api.patch(
        f"/api/v1/labs/{lab['id']}", json={"flavor": "nope"}, headers=world.owner_headers
    )
    assert bad.status_code == 422
    again = world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers).json()
    assert again["flavor"] == "small"


def test_delete_lab_removes_files_but_keeps_jobs(world: LabWorld) -> None:
    lab = world.create_lab("gone", template="classification")
    sweep = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps", json={"params": {}}, headers=world.owner_headers
    )
    assert sweep.status_code == 201
    response = world.api.delete(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers)
    assert response.status_code == 204
    assert not lab_dir(world.settings, lab["id"]).exists()
    assert (
        world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers).status_code == 404
    )
    with world.database.session() as db:
        kept = db.scalars(select(Job).where(Job.lab_id == lab["id"])).all()
    assert len(kept) == 1
    job = world.api.get(f"/api/v1/jobs/{kept[0].id}", headers=world.owner_headers)
    assert job.status_code == 200
