"""The Config tab: mlsteam.yml saves refused with the line and reason, nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from labyard.labs.service import lab_dir
from tests.integration.labs.conftest import LabWorld

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "".join(
    f"c{i}: &c{i} [*{'b' if i == 0 else f'c{i - 1}'}, *{'b' if i == 0 else f'c{i - 1}'}]\n"
    for i in range(20)
)


@pytest.fixture
def lab(world: LabWorld) -> dict[str, Any]:
    return world.create_lab("cfg", template="classification")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("command: python x.py\nparams:\n  a: [1\n", "line 4: invalid YAML"),
        (
            "command: python x.py\nparams:\n  a: 1\nimage_name: x\n",
            "line 4: unknown key 'image_name'",
        ),
        ("command: python x.py\nparams:\n  a: 1\n  b: {c: 1}\n", "line 4"),
        ("command: [python]\n", "`command` must be a non-empty string"),
        (
            "command: python x.py\nparams_as_flags: maybe\n",
            "`params_as_flags` must be true or false",
        ),
        (
            "command: python x.py\nparams:\n  e: 5\nparams_definition:\n  e: {type: int, max: 3}\n",
            "line 3: e: 5 is above the maximum 3",
        ),
        ("command: x\n" + BOMB, "anchors and aliases"),
        ("command: x\n# " + "y" * (300 * 1024) + "\n", "larger than 256 KiB"),
        ("", "empty"),
    ],
)
def test_invalid_config_is_refused_with_line_and_reason(
    world: LabWorld, lab: dict[str, Any], content: str, reason: str
) -> None:
    path = lab_dir(world.settings, lab["id"]) / "mlsteam.yml"
    before = path.read_text()
    api = world.api.put(
        f"/api/v1/labs/{lab['id']}/config", json={"content": content}, headers=world.owner_headers
    )
    assert api.status_code in (413, 422), api.text
    assert reason in api.json()["detail"] or api.status_code == 413
    with world.web_for(world.owner) as web:
        page = web.hx("POST", f"/labs/{lab['id']}/config", data={"content": content})
    assert page.status_code in (200, 413) and ("form-error" in page.text or page.status_code == 413)
    assert path.read_text() == before


def test_error_fragment_carries_the_line(world: LabWorld, lab: dict[str, Any]) -> None:
    with world.web_for(world.owner) as web:
        page = web.hx(
            "POST", f"/labs/{lab['id']}/config", data={"content": "command: x\nwhat: 1\n"}
        )
    assert page.status_code == 200
    assert 'data-error-line="2"' in page.text and "mlsteam.yml line 2: unknown key" in page.text


def test_valid_config_is_saved(world: LabWorld, lab: dict[str, Any]) -> None:
    content = "command: python train.py\nparams:\n  network: [lenet, vgg16]\n"
    with world.web_for(world.owner) as web:
        page = web.hx("POST", f"/labs/{lab['id']}/config", data={"content": content})
    assert page.status_code == 200 and "Saved." in page.text
    assert (lab_dir(world.settings, lab["id"]) / "mlsteam.yml").read_text() == content
    form = world.api.get(f"/api/v1/labs/{lab['id']}/parameters", headers=world.owner_headers).json()
    assert form["jobs"] == 2


def test_parameters_tab_explains_a_broken_file(world: LabWorld, lab: dict[str, Any]) -> None:
    (lab_dir(world.settings, lab["id"]) / "mlsteam.yml").write_text("command: x\nbad: 1\n")
    api = world.api.get(f"/api/v1/labs/{lab['id']}/parameters", headers=world.owner_headers)
    assert api.status_code == 422 and "line 2" in api.json()["detail"]
    with world.web_for(world.owner) as web:
        page = web.get(f"/labs/{lab['id']}/parameters")
    assert page.status_code == 200 and "line 2: unknown key" in page.text
