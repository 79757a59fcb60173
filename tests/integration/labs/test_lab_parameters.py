"""The parameter form, grid counting and typing, sweeps, and the job snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from labyard.jobs.service import job_dir
from labyard.labs.service import lab_dir
from tests.integration.labs.conftest import LabWorld

TYPED = """\
command: python run.py --fixed 1
params:
  epochs: 3
  lr: [0.1, 0.01]
  name: abc
  fast: true
  mode: [a]
params_definition:
  mode: {options: [a, b, c]}
  epochs: {type: int, min: 1, max: 100, help: how long}
"""


def _lab_with(world: LabWorld, config: str, name: str = "p") -> dict[str, Any]:
    lab = world.create_lab(name)
    body = {"path": "mlsteam.yml", "content": config}
    response = world.api.put(
        f"/api/v1/labs/{lab['id']}/files/content", json=body, headers=world.owner_headers
    )
    assert response.status_code == 200, response.text
    return lab


def test_parameters_as_json(world: LabWorld) -> None:
    lab = _lab_with(world, TYPED)
    form = world.api.get(f"/api/v1/labs/{lab['id']}/parameters", headers=world.owner_headers).json()
    fields = {f["name"]: f for f in form["fields"]}
    assert form["jobs"] == 2 and form["command"] == "python run.py --fixed 1"
    assert [f["name"] for f in form["fields"]] == ["epochs", "lr", "name", "fast", "mode"]
    assert fields["mode"] == {
        "name": "mode",
        "kind": "select",
        "type": "str",
        "options": ["a", "b", "c"],
        "values": ["a"],
        "help": "",
    }
    assert (fields["epochs"]["kind"], fields["epochs"]["type"], fields["epochs"]["help"]) == (
        "input",
        "int",
        "how long",
    )
    assert (fields["lr"]["type"], fields["lr"]["values"]) == ("float", ["0.1", "0.01"])
    assert (fields["fast"]["type"], fields["name"]["type"]) == ("bool", "str")


def _count(web: Any, lab: dict[str, Any], data: dict[str, Any]) -> Any:
    return web.hx("POST", f"/labs/{lab['id']}/parameters/count", data=data)


@pytest.mark.parametrize(
    ("data", "jobs"),
    [
        ({}, 2),
        ({"param.mode": ["a", "b"]}, 4),
        ({"param.mode": ["a", "b", "c"], "param.epochs": "1, 2"}, 12),
        ({"param.lr": "0.5"}, 1),
        ({"param.lr": "0.5,0.5, 0.5"}, 1),
        ({"param.fast": "true,false", "param.name": "x,y,z"}, 12),
    ],
)
def test_grid_counting(world: LabWorld, data: dict[str, Any], jobs: int) -> None:
    lab = _lab_with(world, TYPED)
    with world.web_for(world.owner) as web:
        response = _count(web, lab, data)
    assert response.status_code == 200
    expected = f"<strong>{jobs}</strong> job{'' if jobs == 1 else 's'} will be created"
    assert expected in response.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"param.epochs": "3, x"}, "epochs: &#39;x&#39; is not a valid int."),
        ({"param.epochs": "0"}, "epochs: 0 is below the minimum 1"),
        ({"param.epochs": "2.5"}, "not a valid int"),
        ({"param.lr": "fast"}, "lr: &#39;fast&#39; is not a valid float."),
        ({"param.fast": "maybe"}, "not a valid bool"),
        ({"param.mode": ["d"]}, "mode: &#39;d&#39; is not one of a, b, c."),
        ({"param.lr": " , "}, "lr: give at least one value."),
    ],
)
def test_wrong_types_are_refused_inline(
    world: LabWorld, data: dict[str, Any], message: str
) -> None:
    lab = _lab_with(world, TYPED)
    with world.web_for(world.owner) as web:
        response = _count(web, lab, data)
        assert response.status_code == 200
        assert message in response.text and 'hx-swap-oob="true"' in response.text
        assert "<strong>0</strong> jobs will be created" in response.text
        review = web.hx("POST", f"/labs/{lab['id']}/parameters/review", data=data)
        assert review.status_code == 422
    sweeps = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps",
        json={
            "params": {
                k.removeprefix("param."): v if isinstance(v, list) else v.split(",")
                for k, v in data.items()
            }
        },
        headers=world.owner_headers,
    )
    assert sweeps.status_code == 422
    assert world.api.get("/api/v1/labs", headers=world.owner_headers).json()[0]["job_counts"] == {}


def test_sweep_api_creates_one_job_per_combination(world: LabWorld) -> None:
    lab = _lab_with(world, TYPED)
    response = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps",
        json={"params": {"mode": ["a", "b"], "epochs": [1, "2"]}, "flavor": "cpu"},
        headers=world.owner_headers,
    )
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["flavor"] == "cpu" and len(sweep["jobs"]) == 8
    assert {(j["params"]["mode"], j["params"]["epochs"]) for j in sweep["jobs"]} == {
        (m, e) for m in "ab" for e in (1, 2)
    }
    assert all(j["status"] == "queued" for j in sweep["jobs"])
    counts = world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers).json()[
        "job_counts"
    ]
    assert counts == {"queued": 8}


def test_unknown_param_and_unknown_flavor_are_refused(world: LabWorld) -> None:
    lab = _lab_with(world, TYPED)
    url = f"/api/v1/labs/{lab['id']}/sweeps"
    unknown = world.api.post(url, json={"params": {"nope": [1]}}, headers=world.owner_headers)
    assert unknown.status_code == 422 and unknown.json()["field"] == "nope"
    flavor = world.api.post(url, json={"flavor": "nope"}, headers=world.owner_headers)
    assert flavor.status_code == 422 and flavor.json()["field"] == "flavor"
    assert (
        world.api.get(f"/api/v1/labs/{lab['id']}", headers=world.owner_headers).json()["job_counts"]
        == {}
    )


def test_blank_lab_with_a_script_runs_like_a_template(world: LabWorld) -> None:
    lab = world.create_lab("blank")
    h = world.owner_headers
    script = {"path": "train.py", "content": "import sys; print(sys.argv)\n"}
    config = {
        "path": "mlsteam.yml",
        "content": "command: python train.py\nparams:\n  seed: [1, 2]\n",
    }
    assert (
        world.api.put(f"/api/v1/labs/{lab['id']}/files/content", json=script, headers=h).status_code
        == 200
    )
    assert (
        world.api.put(f"/api/v1/labs/{lab['id']}/files/content", json=config, headers=h).status_code
        == 200
    )
    sweep = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps", json={"params": {}}, headers=h
    ).json()
    assert [j["params"] for j in sweep["jobs"]] == [{"seed": 1}, {"seed": 2}]
    job = world.api.get(f"/api/v1/jobs/{sweep['jobs'][0]['id']}", headers=h).json()
    assert job["command"] == ["python", "train.py", "--seed", "1"]


def test_editing_the_lab_after_submitting_does_not_change_queued_jobs(world: LabWorld) -> None:
    lab = world.create_lab("snap", template="classification")
    h = world.owner_headers
    sweep = world.api.post(
        f"/api/v1/labs/{lab['id']}/sweeps", json={"params": {"network": ["lenet"]}}, headers=h
    ).json()
    job_id = sweep["jobs"][0]["id"]
    snapshot = job_dir(world.settings, job_id) / "lab"
    train_before = (snapshot / "train.py").read_text()
    yml_before = (snapshot / "mlsteam.yml").read_text()
    edit = {"path": "train.py", "content": "raise SystemExit('edited')\n"}
    assert (
        world.api.put(f"/api/v1/labs/{lab['id']}/files/content", json=edit, headers=h).status_code
        == 200
    )
    config = world.api.get(f"/api/v1/labs/{lab['id']}/config", headers=h).json()["content"]
    new_config = config.replace("num_epoch: 10", "num_epoch: 99")
    assert (
        world.api.put(
            f"/api/v1/labs/{lab['id']}/config", json={"content": new_config}, headers=h
        ).status_code
        == 200
    )
    assert (
        world.api.delete(
            f"/api/v1/labs/{lab['id']}/files", params={"path": "cls"}, headers=h
        ).status_code
        == 204
    )
    assert (snapshot / "train.py").read_text() == train_before
    assert (snapshot / "mlsteam.yml").read_text() == yml_before and "num_epoch: 10" in yml_before
    assert (snapshot / "cls").is_dir()
    job = world.api.get(f"/api/v1/jobs/{job_id}", headers=h).json()
    assert job["params"]["num_epoch"] == 10 and job["status"] == "queued"
    assert (lab_dir(world.settings, lab["id"]) / "train.py").read_text().startswith("raise")


def test_the_framework_param_says_which_frameworks_are_installed(
    world: LabWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    from labyard.labs import params

    lab = world.create_lab("fw", template="classification")
    url = f"/api/v1/labs/{lab['id']}/parameters"

    def framework_help() -> str:
        params.installed_frameworks.cache_clear()
        fields = world.api.get(url, headers=world.owner_headers).json()["fields"]
        [field] = [f for f in fields if f["name"] == "framework"]
        assert field["options"] == ["pytorch", "tensorflow"]
        return str(field["help"])

    torch_version = metadata.version("torch")
    assert f"pytorch {torch_version}" in framework_help()
    real_version = metadata.version

    def without_tensorflow(name: str) -> str:
        if name.startswith("tensorflow"):
            raise metadata.PackageNotFoundError(name)
        return real_version(name)

    monkeypatch.setattr(metadata, "version", without_tensorflow)
    shown = framework_help()
    assert "tensorflow not installed (pip install 'labyard[tensorflow]')" in shown
    assert f"pytorch {torch_version}" in shown
    monkeypatch.undo()
    params.installed_frameworks.cache_clear()
