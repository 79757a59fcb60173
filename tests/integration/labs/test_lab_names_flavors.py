"""Issue 11, labs: the lab name rule is a message (never a silent cut), and a flavor that can
never run on this installation is disabled with its reason in every picker and refused when
sent anyway. The installation here has exactly 1 GPU (LABYARD_GPUS=0)."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.jobs.inventory import Inventory
from labyard.jobs.models import Job
from labyard.labs import service
from labyard.labs.models import Lab
from labyard.labs.service import LAB_NAME_RULE
from tests.integration.labs.conftest import LabWorld

THIRTEEN = "thirteen-char"  # 13 characters: the rule allows 11


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This installation: one GPU, whatever the test machine has."""
    return settings.model_copy(update={"gpus": "0"})


@pytest.fixture(autouse=True)
def _flavors(database: Database) -> None:
    """Small flavors (any test machine has 0.1 CPU and 64 MiB): fits1 fits, gpu8 never does."""
    with database.session() as db:
        db.add(Flavor(name="fits1", gpus=1, cpus=0.1, memory_mb=64))
        db.add(Flavor(name="gpu8", gpus=8, cpus=0.1, memory_mb=64))


def _lab_count(world: LabWorld) -> int:
    with world.database.session() as db:
        return int(db.scalar(select(func.count()).select_from(Lab)) or 0)


def _option(page: str, name: str) -> str:
    """The <option> of flavor `name` in a page."""
    found = re.search(rf'<option value="{name}"[^>]*>[^<]*</option>', page)
    assert found, f"no option {name} in the page"
    return html.unescape(found.group(0))


# ---------------------------------------------------------------- names


def test_thirteen_character_name_is_refused_with_the_rule_over_the_api(world: LabWorld) -> None:
    body = {"name": THIRTEEN, "project_id": world.project_id}
    response = world.api.post("/api/v1/labs", json=body, headers=world.owner_headers)
    assert response.status_code == 422
    assert response.json() == {"detail": LAB_NAME_RULE, "field": "name"}
    assert _lab_count(world) == 0
    eleven = world.create_lab(THIRTEEN[:11])  # the longest allowed name is kept whole
    assert eleven["name"] == "thirteen-ch"


def test_the_form_never_cuts_a_name_and_shows_the_rule(world: LabWorld) -> None:
    with world.web_for(world.owner) as web:
        page = web.get("/labs").text
        field = re.search(r'<input name="name"[^>]*>', page)
        assert field and 'maxlength="200"' in field.group(0)  # the form's limit, not 11
        assert html.unescape(LAB_NAME_RULE) in html.unescape(page)  # the hint
        refused = web.hx("POST", "/labs", data={"project_id": world.project_id, "name": THIRTEEN})
    assert refused.status_code == 200
    text = html.unescape(refused.text)
    assert f'role="alert" class="form-error">{LAB_NAME_RULE}' in text
    assert f'value="{THIRTEEN}"' in text and 'aria-invalid="true"' in text
    assert _lab_count(world) == 0


# ---------------------------------------------------------------- flavors


def test_flavor_choices_say_why_a_flavor_can_never_run() -> None:
    """The one rule (Inventory.why_never_fits) for GPUs, CPUs and memory, per flavor."""
    inventory = Inventory(gpus=("0",), cpus=4.0, memory_mb=8192)
    sizes = {"cpu": (0, 1.0, 64), "g1": (1, 4.0, 8192), "g2": (2, 1.0, 64)}
    sizes |= {"many-cpus": (0, 5.0, 64), "big-mem": (0, 1.0, 8193)}

    class _Db:
        def scalars(self, _query: object) -> list[Flavor]:
            return [Flavor(name=n, gpus=g, cpus=c, memory_mb=m) for n, (g, c, m) in sizes.items()]

    choices = service.flavor_choices(_Db(), Settings(), inventory)  # type: ignore[arg-type]
    why = {c.flavor.name: c.why_not for c in choices}
    assert why == {
        "cpu": None,
        "g1": None,
        "g2": "it needs 2 GPU(s) and this node has 1",
        "many-cpus": "it needs 5 CPU cores and this node has 4",
        "big-mem": "it needs 8193 MiB of memory and this node has 8192 MiB",
    }


def test_every_picker_disables_a_flavor_that_cannot_fit(world: LabWorld) -> None:
    lab = world.create_lab("cls", template="classification")
    form = {"param.network": ["lenet"]}
    with world.web_for(world.owner) as web:
        pages = {
            "new lab": web.get("/labs").text,
            "project's new lab": web.get(f"/projects/{world.project_id}/labs").text,
            "submit": web.hx("POST", f"/labs/{lab['id']}/parameters/review", data=form).text,
        }
    for where, page in pages.items():
        gpu8 = _option(page, "gpu8")
        assert " disabled" in gpu8, where
        assert "can't run here: it needs 8 GPU(s) and this node has 1" in gpu8, where
        assert " disabled" not in _option(page, "fits1"), where


def test_a_crafted_request_for_a_flavor_that_cannot_fit_is_refused(world: LabWorld) -> None:
    lab = world.create_lab("cls", template="classification")
    message = "Flavor 'gpu8' can never run on this node: it needs 8 GPU(s) and this node has 1."
    api = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps",
        json={"params": {"network": ["lenet"]}, "flavor": "gpu8"},
        headers=world.owner_headers,
    )
    assert api.status_code == 422 and api.json() == {"detail": message, "field": "flavor"}
    body = {"name": "big", "project_id": world.project_id, "flavor": "gpu8"}
    created = world.api.post("/api/v1/labs", json=body, headers=world.owner_headers)
    assert created.status_code == 422 and created.json() == {"detail": message, "field": "flavor"}
    with world.web_for(world.owner) as web:
        page = web.hx(
            "POST", f"/labs/{lab['id']}/sweeps", data={"param.network": "lenet", "flavor": "gpu8"}
        )
        form = web.hx("POST", "/labs", data={**body, "name": "big2"})
    assert page.status_code == 422 and message in html.unescape(page.text)
    assert form.status_code == 200 and message in html.unescape(form.text)
    with world.database.session() as db:
        assert db.scalar(select(func.count()).select_from(Job)) == 0
        assert list(db.scalars(select(Lab.name))) == ["cls"]
