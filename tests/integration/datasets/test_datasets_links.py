"""Zips refused from their end record, and links inside datasets never followed out: moves
that would carry a link out are refused, listings and insight do not follow links, and
extraction messages name no server path."""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

from labyard.config import Settings
from labyard.datasets import archives, service
from labyard.db import Database
from tests.factories import WebClient, make_dataset, make_users_fast
from tests.integration.datasets.conftest import (
    Team,
    dataset_root,
    tar_bytes,
    tree,
    upload,
    wait_task,
)
from tests.zipgen import write_end_records, write_many_entry_zip


def _extract(api: WebClient, team: Team, path: str) -> dict[str, object]:
    started = api.post(
        f"/api/v1/datasets/{team.dataset_id}/extract", json={"path": path}, headers=team.writer
    )
    assert started.status_code == 202, started.text
    return wait_task(api, team.writer, started.json()["id"])


def _refused_cleanly(task: dict[str, object], settings: Settings, root: Path, name: str) -> str:
    """The task failed, left only the archive, and its message names no server path."""
    message = str(task["message"])
    assert task["status"] == "failed", task
    assert tree(root) == [name]
    assert tree(service.work_dir(settings)) == []
    assert str(settings.data_dir) not in message and "/tmp" not in message
    return message


# ---------------------------------------------------------------- zip end records


def test_zip_end_records_give_the_counts_zipfile_sees(tmp_path: Path) -> None:
    small = tmp_path / "small.zip"
    with zipfile.ZipFile(small, "w") as archive:
        for i in range(7):
            archive.writestr(f"d/{i}.txt", b"x" * i)
        archive.comment = b"PK a comment that is not a record"
    big = tmp_path / "big.zip"
    write_many_entry_zip(big, 70_000)  # past 65,535: the count lives in the zip64 record
    for path, count in ((small, 7), (big, 70_000)):
        entries, cd_size = archives.zip_directory(path)
        with zipfile.ZipFile(path) as archive:
            assert entries == count == len(archive.infolist())
            records = archive.infolist()
            assert cd_size == sum(
                46 + len(i.filename.encode()) + len(i.extra) + len(i.comment) for i in records
            )


def test_many_entry_zip_is_refused_from_its_end_record(
    api: WebClient, team: Team, settings: Settings, database: Database, tmp_path: Path
) -> None:
    settings.archive_max_entries = 60_000
    path = tmp_path / "many.zip"
    write_many_entry_zip(path, 70_000)
    upload(api, team.owner, team.dataset_id, "many.zip", path.read_bytes())
    task = _extract(api, team, "many.zip")
    root = dataset_root(settings, database, team.dataset_id)
    message = _refused_cleanly(task, settings, root, "many.zip")
    assert message == (
        "Archive refused, nothing was extracted: it lists 70000 entries, more than 60000."
    )


def test_the_central_directory_is_never_read_when_the_count_is_refused(
    api: WebClient, team: Team, settings: Settings, database: Database, tmp_path: Path
) -> None:
    # The directory is junk zipfile cannot read: only the end record can refuse this.
    path = tmp_path / "junk.zip"
    with path.open("wb") as out:
        out.write(os.urandom(4096))
        write_end_records(out, 2_000_000, 0, 4096)
    upload(api, team.owner, team.dataset_id, "junk.zip", path.read_bytes())
    task = _extract(api, team, "junk.zip")
    root = dataset_root(settings, database, team.dataset_id)
    message = _refused_cleanly(task, settings, root, "junk.zip")
    assert "it lists 2000000 entries, more than 200000" in message


def test_a_zip_understating_its_count_is_refused(
    api: WebClient, team: Team, settings: Settings, database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "liar.zip"
    write_many_entry_zip(path, 5_000, claimed=1)  # 5,000 entries listed as one
    upload(api, team.owner, team.dataset_id, "liar.zip", path.read_bytes())
    task = _extract(api, team, "liar.zip")
    root = dataset_root(settings, database, team.dataset_id)
    message = _refused_cleanly(task, settings, root, "liar.zip")
    assert "central directory (270000 bytes) is too large for the 1 entries it lists" in message


def test_a_file_without_an_end_record_is_refused(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    upload(api, team.owner, team.dataset_id, "no.zip", b"PK\x03\x04" + b"\0" * 100)
    task = _extract(api, team, "no.zip")
    root = dataset_root(settings, database, team.dataset_id)
    message = _refused_cleanly(task, settings, root, "no.zip")
    assert message == "Cannot read the archive: it is not a zip file (no end record)."


def test_a_write_error_names_the_entry_not_the_server_path(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    deep = "/".join(["d" * 200] * 30) + "/f.txt"  # past PATH_MAX once under the data folder
    upload(api, team.owner, team.dataset_id, "deep.tar", tar_bytes([(deep, b"x")], mode="w"))
    task = _extract(api, team, "deep.tar")
    root = dataset_root(settings, database, team.dataset_id)
    message = _refused_cleanly(task, settings, root, "deep.tar")
    assert message.startswith("Extraction failed: File name too long (dddd"), message


# ---------------------------------------------------------------- links inside datasets


def _dataset_with_link(api: WebClient, team: Team, settings: Settings, database: Database) -> Path:
    """The dataset holds a/b/up -> ../../x (inside, to its own x/) and x/secret.txt."""
    archive = tar_bytes([("x/secret.txt", b"mine"), ("a/b/keep.txt", b"k")])
    upload(api, team.owner, team.dataset_id, "t.tar.gz", archive)
    assert _extract(api, team, "t.tar.gz")["status"] == "done"
    root = dataset_root(settings, database, team.dataset_id)
    os.symlink("../../x", root / "a" / "b" / "up")  # what an archive's link is allowed to be
    assert (root / "a" / "b" / "up" / "secret.txt").read_bytes() == b"mine"
    return root


def test_moving_a_folder_whose_link_would_point_out_is_refused(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    root = _dataset_with_link(api, team, settings, database)
    before = tree(root)
    # at the top, b/up -> ../../x would be datasets/x: beside the dataset, another's folder
    moved = api.post(
        f"/api/v1/datasets/{team.dataset_id}/move",
        json={"path": "a/b", "to": ""},
        headers=team.writer,
    )
    assert moved.status_code == 422, moved.text
    assert "would make links point outside the folder: 'a/b/up'" in moved.json()["detail"]
    assert str(settings.data_dir) not in moved.text
    assert tree(root) == before
    renamed = api.post(  # a rename in place keeps the link's meaning, so it is allowed
        f"/api/v1/datasets/{team.dataset_id}/move",
        json={"path": "a/b", "name": "c"},
        headers=team.writer,
    )
    assert renamed.status_code == 200, renamed.text
    assert (root / "a" / "c" / "up" / "secret.txt").read_bytes() == b"mine"


def _other_dataset(app_database: Database, settings: Settings) -> Path:
    """Another project's dataset holding secret files, on disk."""
    users = make_users_fast(app_database, "eve")
    other = make_dataset(app_database, settings, users["eve"], users["eve"].default_project_id)
    root = dataset_root(settings, app_database, other)
    for split in ("train", "test"):
        (root / split / "cat").mkdir(parents=True)
        (root / split / "cat" / "1.png").write_bytes(b"not really an image")
    return root


def test_listings_and_downloads_do_not_follow_links_out(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    other = _other_dataset(database, settings)
    root = dataset_root(settings, database, team.dataset_id)
    (root / "inside.txt").write_bytes(b"ok")
    os.symlink(other / "train", root / "theirs")
    os.symlink(other / "train" / "cat" / "1.png", root / "theirs.png")
    os.symlink("inside.txt", root / "alias.txt")  # a link that stays inside is shown
    listed = api.get(f"/api/v1/datasets/{team.dataset_id}/files", headers=team.reader)
    assert listed.status_code == 200
    assert sorted(e["name"] for e in listed.json()) == ["alias.txt", "inside.txt"]
    for path in ("theirs/cat/1.png", "theirs.png", "theirs"):
        got = api.get(
            f"/api/v1/datasets/{team.dataset_id}/download",
            params={"path": path},
            headers=team.reader,
        )
        assert got.status_code == 404, (path, got.status_code)
    whole = api.get(
        f"/api/v1/datasets/{team.dataset_id}/download", params={"path": ""}, headers=team.reader
    )
    assert whole.status_code == 200
    assert b"not really an image" not in whole.content


def test_insight_does_not_follow_links(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    other = _other_dataset(database, settings)
    root = dataset_root(settings, database, team.dataset_id)
    os.symlink(other / "train", root / "train")
    os.symlink(other / "test", root / "test")
    got = api.get(f"/api/v1/datasets/{team.dataset_id}/insight", headers=team.reader)
    assert got.status_code == 200
    assert got.json()["recognised"] is False
    assert "'train/' and 'test/' missing" in got.json()["reason"]
    for split in ("train", "test"):  # real folders, but the class folder and image are links
        (root / split).unlink()
        (root / split).mkdir()
        os.symlink(other / split / "cat", root / split / "cat")
        (root / split / "dog").mkdir()
        os.symlink(other / split / "cat" / "1.png", root / split / "dog" / "1.png")
        (root / split / "dog" / "2.png").write_bytes(struct.pack(">I", 0))
    body = api.get(f"/api/v1/datasets/{team.dataset_id}/insight", headers=team.reader).json()
    assert body["recognised"] is True
    assert body["classes"] == ["dog"]
    assert [s["classes"] for s in body["splits"]] == [{"dog": 1}, {"dog": 1}]
