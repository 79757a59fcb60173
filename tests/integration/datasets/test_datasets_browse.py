"""The file browser: traversal attempts on every path-taking route answer 404, listings,
downloads (a folder as a streamed zip), thumbnails, new folder / rename / move / delete,
and the insight of recognised and unrecognised layouts."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from labyard.config import Settings
from labyard.db import Database
from tests.factories import WebClient
from tests.integration.datasets.conftest import Team, dataset_root, tree, upload

TRAVERSALS = [
    "../",
    "..",
    "../../etc/passwd",
    "%2e%2e%2f",
    "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252f",
    "%252e%252e/etc/passwd",
    "..;/",
    ";../..",
    "a/..;/..;/etc",
    "..\\..\\etc\\passwd",
    "/etc/passwd",
    "out",
    "out/passwd",
    "outfile",
    "..%00/x",
    "a/%00",
]


@pytest.fixture
def planted(api: WebClient, team: Team, settings: Settings, database: Database) -> Path:
    """A dataset with a file, and symlinks pointing out of it (as if planted on disk)."""
    upload(api, team.owner, team.dataset_id, "a.txt", b"inside")
    root = dataset_root(settings, database, team.dataset_id)
    (root / "out").symlink_to("/etc")
    (root / "outfile").symlink_to("/etc/passwd")
    secret = settings.data_dir / "secret.txt"
    secret.write_text("secret")
    (root / "a").mkdir()
    return root


def _raw(api: WebClient, method: str, url: str, team: Team, **kwargs: object) -> int:
    return int(api.request(method, url, headers=team.owner, **kwargs).status_code)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_traversal_answers_404_on_every_path_route(
    api: WebClient, team: Team, planted: Path, bad: str
) -> None:
    base = f"/api/v1/datasets/{team.dataset_id}"
    statuses = {
        "list": _raw(api, "GET", f"{base}/files", team, params={"path": bad}),
        "list-raw": _raw(api, "GET", f"{base}/files?path={bad}", team),
        "download": _raw(api, "GET", f"{base}/download", team, params={"path": bad}),
        "download-raw": _raw(api, "GET", f"{base}/download?path={bad}", team),
        "thumb": _raw(api, "GET", f"{base}/thumbnail", team, params={"path": bad}),
        "delete": _raw(api, "DELETE", f"{base}/files", team, params={"path": bad + "/x"}),
        "move": _raw(api, "POST", f"{base}/move", team, json={"path": bad, "name": "z"}),
        "move-to": _raw(api, "POST", f"{base}/move", team, json={"path": "a.txt", "to": bad}),
        "mkdir": _raw(api, "POST", f"{base}/folders", team, json={"path": bad, "name": "n"}),
        "extract": _raw(api, "POST", f"{base}/extract", team, json={"path": bad}),
        "upload": int(
            upload(
                api,
                team.owner,
                team.dataset_id,
                "u.txt",
                b"u",  # type: ignore[attr-defined]
                path=bad,
            ).status_code
        ),
        "page": _raw(api, "GET", f"/datasets/{team.dataset_id}", team, params={"path": bad}),
        "page-file": _raw(
            api, "GET", f"/datasets/{team.dataset_id}/preview", team, params={"path": bad}
        ),
    }
    assert {k: v for k, v in statuses.items() if v != 404} == {}
    assert sorted(tree(planted)) == ["a", "a.txt", "out", "outfile"]


def test_delete_removes_a_link_not_its_target(
    api: WebClient, team: Team, planted: Path, settings: Settings
) -> None:
    url = f"/api/v1/datasets/{team.dataset_id}/files"
    assert api.delete(url, params={"path": "outfile"}, headers=team.owner).status_code == 204
    assert Path("/etc/passwd").exists() and not (planted / "outfile").is_symlink()


def test_listing_download_and_folder_zip(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    for name, folder in (("1.txt", ""), ("2.txt", "sub"), ("3.txt", "sub/deeper")):
        if folder:
            parent, _, leaf = folder.rpartition("/")
            api.post(
                f"/api/v1/datasets/{team.dataset_id}/folders",
                json={"path": parent, "name": leaf},
                headers=team.owner,
            )
        upload(api, team.owner, team.dataset_id, name, name.encode() * 1000, path=folder)
    listing = api.get(f"/api/v1/datasets/{team.dataset_id}/files", headers=team.reader).json()
    assert [(e["name"], e["type"]) for e in listing] == [("sub", "dir"), ("1.txt", "file")]
    response = api.get(
        f"/api/v1/datasets/{team.dataset_id}/download", params={"path": "sub"}, headers=team.reader
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert "sub.zip" in response.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["2.txt", "deeper/3.txt"]
        assert archive.read("deeper/3.txt") == b"3.txt" * 1000
    whole = api.get(f"/api/v1/datasets/{team.dataset_id}/download", headers=team.reader)
    with zipfile.ZipFile(io.BytesIO(whole.content)) as archive:
        assert sorted(archive.namelist()) == ["1.txt", "sub/2.txt", "sub/deeper/3.txt"]
    one = api.get(
        f"/api/v1/datasets/{team.dataset_id}/download",
        params={"path": "1.txt"},
        headers=team.reader,
    )
    assert one.content == b"1.txt" * 1000 and "attachment" in one.headers["content-disposition"]


def test_new_folder_rename_move_delete(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    base = f"/api/v1/datasets/{team.dataset_id}"
    assert (
        api.post(f"{base}/folders", json={"name": "imgs"}, headers=team.writer).status_code == 201
    )
    assert (
        api.post(f"{base}/folders", json={"name": "imgs"}, headers=team.writer).status_code == 409
    )
    upload(api, team.writer, team.dataset_id, "a.png", b"a")
    renamed = api.post(f"{base}/move", json={"path": "a.png", "name": "b.png"}, headers=team.writer)
    assert renamed.json() == {"path": "b.png"}
    moved = api.post(f"{base}/move", json={"path": "b.png", "to": "imgs"}, headers=team.writer)
    assert moved.json() == {"path": "imgs/b.png"}
    into_itself = api.post(f"{base}/move", json={"path": "imgs", "to": "imgs"}, headers=team.writer)
    assert into_itself.status_code == 422
    bad_name = api.post(f"{base}/move", json={"path": "imgs", "name": "../x"}, headers=team.writer)
    assert bad_name.status_code == 422
    root = dataset_root(settings, database, team.dataset_id)
    assert tree(root) == ["imgs", "imgs/b.png"]
    assert (
        api.delete(f"{base}/files", params={"path": "imgs"}, headers=team.writer).status_code == 204
    )
    assert tree(root) == []
    assert api.delete(f"{base}/files", params={"path": ""}, headers=team.writer).status_code == 422
    assert (
        api.get(f"/api/v1/datasets/{team.dataset_id}", headers=team.owner).json()["file_count"] == 0
    )


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


def test_thumbnails_are_made_once_and_cached_outside_the_dataset(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    upload(api, team.owner, team.dataset_id, "big.png", _png((640, 480)))
    upload(api, team.owner, team.dataset_id, "fake.png", b"not an image")
    url = f"/api/v1/datasets/{team.dataset_id}/thumbnail"
    first = api.get(url, params={"path": "big.png"}, headers=team.reader)
    assert first.status_code == 200 and first.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(first.content)).size == (96, 72)
    assert api.get(url, params={"path": "big.png"}, headers=team.reader).content == first.content
    assert api.get(url, params={"path": "fake.png"}, headers=team.reader).status_code == 404
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["big.png", "fake.png"]
    assert list((settings.data_dir / "cache" / "thumbnails").rglob("*.png"))


def test_insight_of_classification_and_unknown_layouts(api: WebClient, team: Team) -> None:
    url = f"/api/v1/datasets/{team.dataset_id}/insight"
    upload(api, team.owner, team.dataset_id, "notes.txt", b"x")
    unknown = api.get(url, headers=team.reader).json()
    assert not unknown["recognised"] and "'train/' and 'test/' missing" in unknown["reason"]
    for split, cls, n in (
        ("train", "cat", 3),
        ("train", "dog", 2),
        ("test", "cat", 1),
        ("test", "dog", 1),
        ("val", "dog", 1),
    ):
        for i in range(n):
            upload(
                api,
                team.owner,
                team.dataset_id,
                f"{split}/{cls}/{i}.png",
                _png((32, 24), "L" if cls == "dog" else "RGB"),
            )
    known = api.get(url, headers=team.reader).json()
    assert known["recognised"] and known["classes"] == ["cat", "dog"]
    assert {s["name"]: s["classes"] for s in known["splits"]} == {
        "train": {"cat": 3, "dog": 2},
        "val": {"dog": 1},
        "test": {"cat": 1, "dog": 1},
    }
    assert known["sizes"] == [["32x24", 8]] and dict(known["modes"]) == {"RGB": 4, "L": 4}
    upload(api, team.owner, team.dataset_id, "test/bird/0.png", _png((4, 4)))
    odd = api.get(url, headers=team.reader).json()
    assert not odd["recognised"] and "bird" in odd["reason"]
