"""A lab's files through the API: list, read, write, upload, folders, rename, delete, and
every path that tries to leave the lab's folder."""

from __future__ import annotations

from typing import Any

import pytest

from labyard.labs.service import lab_dir
from tests.integration.labs.conftest import LabWorld


@pytest.fixture
def lab(world: LabWorld) -> dict[str, Any]:
    return world.create_lab("files")


def _url(lab: dict[str, Any], tail: str = "") -> str:
    return f"/api/v1/labs/{lab['id']}/files{tail}"


def test_list_read_write_round_trip(world: LabWorld, lab: dict[str, Any]) -> None:
    h = world.owner_headers
    listing = world.api.get(_url(lab), headers=h).json()
    assert listing["path"] == "" and [e["name"] for e in listing["entries"]] == [
        "main.py",
        "mlsteam.yml",
    ]
    body = {"path": "src/util.py", "content": "X = 1\n"}
    assert world.api.put(_url(lab, "/content"), json=body, headers=h).status_code == 200
    read = world.api.get(_url(lab, "/content"), params={"path": "src/util.py"}, headers=h)
    assert read.json() == {"path": "src/util.py", "content": "X = 1\n"}
    sub = world.api.get(_url(lab), params={"path": "src"}, headers=h).json()
    assert [e["path"] for e in sub["entries"]] == ["src/util.py"]


def test_upload_to_a_path_and_into_a_folder(world: LabWorld, lab: dict[str, Any]) -> None:
    h = world.owner_headers
    first = world.api.post(
        _url(lab),
        files={"file": ("ignored.py", b"print(1)\n")},
        data={"path": "pkg/a.py"},
        headers=h,
    )
    assert first.status_code == 201 and first.json() == {"path": "pkg/a.py"}
    second = world.api.post(
        _url(lab), files={"file": ("b.bin", b"\x00\x01")}, data={"path": "pkg/"}, headers=h
    )
    assert second.json() == {"path": "pkg/b.bin"}
    root = lab_dir(world.settings, lab["id"])
    assert (root / "pkg" / "a.py").read_bytes() == b"print(1)\n"
    binary = world.api.get(_url(lab, "/content"), params={"path": "pkg/b.bin"}, headers=h)
    assert binary.status_code == 422 and "binary" in binary.json()["detail"]


def test_folder_rename_delete(world: LabWorld, lab: dict[str, Any]) -> None:
    h = world.owner_headers
    root = lab_dir(world.settings, lab["id"])
    assert (
        world.api.post(
            f"/api/v1/labs/{lab['id']}/folders", json={"path": "d"}, headers=h
        ).status_code
        == 201
    )
    again = world.api.post(f"/api/v1/labs/{lab['id']}/folders", json={"path": "d"}, headers=h)
    assert again.status_code == 409
    moved = world.api.post(
        _url(lab, "/move"), json={"path": "main.py", "new_path": "d/run.py"}, headers=h
    )
    assert moved.json() == {"path": "d/run.py"} and (root / "d" / "run.py").is_file()
    clash = world.api.post(
        _url(lab, "/move"), json={"path": "d/run.py", "new_path": "mlsteam.yml"}, headers=h
    )
    assert clash.status_code == 409 and (root / "d" / "run.py").is_file()
    into_itself = world.api.post(
        _url(lab, "/move"), json={"path": "d", "new_path": "d/e"}, headers=h
    )
    assert into_itself.status_code == 422 and (root / "d").is_dir()
    assert world.api.delete(_url(lab), params={"path": "d"}, headers=h).status_code == 204
    assert not (root / "d").exists() and (root / "mlsteam.yml").is_file()
    root_delete = world.api.delete(_url(lab), params={"path": "/"}, headers=h)
    assert root_delete.status_code == 422 and root.is_dir()


@pytest.mark.parametrize("path", ["../x", "a/../../x", "..", "/../x", "a\\..\\x", "a\x00b"])
def test_paths_outside_the_lab_are_refused(world: LabWorld, lab: dict[str, Any], path: str) -> None:
    h = world.owner_headers
    root = lab_dir(world.settings, lab["id"])
    outside = root.parent / "x"
    before = sorted(p.name for p in root.parent.iterdir())
    assert world.api.get(_url(lab, "/content"), params={"path": path}, headers=h).status_code in (
        404,
        422,
    )
    assert world.api.put(
        _url(lab, "/content"), json={"path": path, "content": "x"}, headers=h
    ).status_code in (404, 422)
    upload = world.api.post(_url(lab), files={"file": ("x", b"x")}, data={"path": path}, headers=h)
    assert upload.status_code in (404, 422)
    assert world.api.delete(_url(lab), params={"path": path}, headers=h).status_code in (404, 422)
    assert not outside.exists()
    assert sorted(p.name for p in root.parent.iterdir()) == before


def test_symlink_out_of_the_lab_looks_missing(
    world: LabWorld, lab: dict[str, Any], tmp_path: Any
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (lab_dir(world.settings, lab["id"]) / "link").symlink_to(secret)
    read = world.api.get(
        _url(lab, "/content"), params={"path": "link"}, headers=world.owner_headers
    )
    assert read.status_code == 404 and "top secret" not in read.text


def test_invalid_mlsteam_yml_write_is_refused_and_file_kept(
    world: LabWorld, lab: dict[str, Any]
) -> None:
    root = lab_dir(world.settings, lab["id"])
    before = (root / "mlsteam.yml").read_text()
    body = {"path": "mlsteam.yml", "content": "command: python x.py\nbogus: 1\n"}
    response = world.api.put(_url(lab, "/content"), json=body, headers=world.owner_headers)
    assert response.status_code == 422 and "line 2" in response.json()["detail"]
    upload = world.api.post(
        _url(lab),
        files={"file": ("mlsteam.yml", b"params: [1\n")},
        data={"path": ""},
        headers=world.owner_headers,
    )
    assert upload.status_code == 422
    assert (root / "mlsteam.yml").read_text() == before


def test_size_limits(world: LabWorld, lab: dict[str, Any]) -> None:
    world.settings.lab_max_edit_bytes = 100
    world.settings.lab_max_upload_bytes = 1000
    root = lab_dir(world.settings, lab["id"])
    big = world.api.put(
        _url(lab, "/content"),
        json={"path": "big.py", "content": "x" * 101},
        headers=world.owner_headers,
    )
    assert big.status_code == 413 and not (root / "big.py").exists()
    upload = world.api.post(
        _url(lab),
        files={"file": ("big.bin", b"x" * 1001)},
        data={"path": ""},
        headers=world.owner_headers,
    )
    assert upload.status_code == 413 and not (root / "big.bin").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".upload-")]
