"""Attaching and detaching datasets: the lab's project's own, public ones, and refusals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from labyard.auth.models import User
from labyard.datasets import service as datasets_service
from labyard.labs.models import LabDataset
from labyard.projects.models import Role
from tests.integration.labs.conftest import LabWorld


def _dataset(world: LabWorld, user: User, name: str, project_id: int | None) -> int:
    with world.database.session() as db:
        actor = db.get(User, user.id)
        assert actor is not None
        made = datasets_service.create_dataset(
            db, world.settings, user=actor, name=name, project_id=project_id
        )
        return made.id


def _attachments(world: LabWorld) -> int:
    with world.database.session() as db:
        return db.scalar(select(func.count()).select_from(LabDataset)) or 0


def _url(lab: dict[str, Any], dataset_id: int) -> str:
    return f"/api/v1/labs/{lab['id']}/datasets/{dataset_id}"


def test_attach_and_detach_own_and_public(world: LabWorld) -> None:
    lab = world.create_lab("ds")
    own = _dataset(world, world.owner, "mine", world.project_id)
    attached = world.api.put(_url(lab, own), headers=world.owner_headers)
    assert attached.status_code == 200
    assert attached.json()["datasets"] == [
        {"dataset_id": own, "name": "mine", "public": False, "mount_path": "/mlsteam/input/mine"}
    ]
    again = world.api.put(_url(lab, own), headers=world.owner_headers)
    assert again.status_code == 200 and len(again.json()["datasets"]) == 1
    with world.database.session() as db:
        digits = datasets_service.find_dataset_by_name(
            db,
            db.get(User, world.owner.id),
            "digits",
            None,  # type: ignore[arg-type]
        )
        assert digits is not None and digits.is_public
        digits_id = digits.id
    public = world.api.put(_url(lab, digits_id), headers=world.owner_headers)
    assert [d["name"] for d in public.json()["datasets"]] == ["digits", "mine"]
    detached = world.api.delete(_url(lab, own), headers=world.owner_headers)
    assert [d["name"] for d in detached.json()["datasets"]] == ["digits"]
    missing = world.api.delete(_url(lab, own), headers=world.owner_headers)
    assert missing.status_code == 404 and _attachments(world) == 1


def test_another_projects_private_dataset_is_refused_without_a_leak(world: LabWorld) -> None:
    lab = world.create_lab("ds")
    foreign = _dataset(world, world.other, "theirs", world.other.default_project_id)
    response = world.api.put(_url(lab, foreign), headers=world.owner_headers)
    assert response.status_code == 404
    assert response.json()["detail"] == "No such dataset."
    nonexistent = world.api.put(_url(lab, 99999), headers=world.owner_headers)
    assert nonexistent.json() == response.json()
    assert _attachments(world) == 0


def test_own_dataset_of_another_project_is_refused_even_for_its_member(world: LabWorld) -> None:
    """The owner can read a dataset of their second project, but a lab mounts only its
    own project's datasets and public ones."""
    lab = world.create_lab("ds")
    second = world.api.post(
        "/api/v1/projects", json={"name": "second"}, headers=world.owner_headers
    ).json()["id"]
    elsewhere = _dataset(world, world.owner, "elsewhere", second)
    response = world.api.put(_url(lab, elsewhere), headers=world.owner_headers)
    assert response.status_code == 404 and _attachments(world) == 0


def test_reader_cannot_attach_or_detach(world: LabWorld) -> None:
    lab = world.create_lab("ds", template="classification")
    digits_id = lab["datasets"][0]["dataset_id"]
    world.add_member(world.other, Role.READ)
    own = _dataset(world, world.owner, "mine", world.project_id)
    assert world.api.put(_url(lab, own), headers=world.other_headers).status_code == 403
    assert world.api.delete(_url(lab, digits_id), headers=world.other_headers).status_code == 403
    seen = world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.other_headers)
    assert [d["name"] for d in seen.json()["datasets"]] == ["digits"]


def test_deleting_a_dataset_detaches_it(world: LabWorld) -> None:
    lab = world.create_lab("ds")
    own = _dataset(world, world.owner, "mine", world.project_id)
    world.api.put(_url(lab, own), headers=world.owner_headers)
    with world.database.session() as db:
        datasets_service.delete_dataset(
            db,
            world.settings,
            user=db.get(User, world.owner.id),
            dataset_id=own,  # type: ignore[arg-type]
        )
    after = world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers).json()
    assert after["datasets"] == []
