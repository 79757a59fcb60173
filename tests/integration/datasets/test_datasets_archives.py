"""Archive extraction: every format, every refused class (nothing written inside or outside),
bombs by ratio and by entry count, cancel, extract-after-upload, and a server killed mid-way."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile

import pytest

from labyard.config import Settings
from labyard.datasets import service, tasks
from labyard.datasets.models import DatasetTask
from labyard.db import Database
from tests.factories import WebClient
from tests.integration.datasets.conftest import (
    Team,
    dataset_root,
    tar_bytes,
    tree,
    upload,
    wait_task,
    zip_bytes,
)

FILES = [("train/cat/1.png", b"one"), ("train/dog/2.png", b"two"), ("README.txt", b"hi")]


def _extract(api: WebClient, team: Team, path: str) -> dict[str, object]:
    started = api.post(
        f"/api/v1/datasets/{team.dataset_id}/extract", json={"path": path}, headers=team.writer
    )
    assert started.status_code == 202, started.text
    return wait_task(api, team.writer, started.json()["id"])


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        ("a.tar", "w"),
        ("a.tar.gz", "w:gz"),
        ("a.tgz", "w:gz"),
        ("a.tar.bz2", "w:bz2"),
        ("a.tar.xz", "w:xz"),
        ("a.zip", None),
    ],
)
def test_each_format_extracts_into_the_archives_folder(
    api: WebClient,
    team: Team,
    settings: Settings,
    database: Database,
    name: str,
    mode: str | None,
) -> None:
    data = zip_bytes(FILES) if mode is None else tar_bytes(list(FILES), mode)
    upload(api, team.owner, team.dataset_id, name, data)
    task = _extract(api, team, name)
    assert task["status"] == "done", task
    assert task["progress"] == 1.0 and task["done_entries"] == 3
    root = dataset_root(settings, database, team.dataset_id)
    assert (root / "train" / "dog" / "2.png").read_bytes() == b"two"
    assert sorted(tree(root)) == sorted(
        [
            name,
            "README.txt",
            "train",
            "train/cat",
            "train/cat/1.png",
            "train/dog",
            "train/dog/2.png",
        ]
    )
    assert tree(service.work_dir(settings)) == []


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


REFUSED = [
    (
        "absolute.tar.gz",
        [("ok.txt", b"1"), ("/tmp/labyard-evil.txt", b"x")],
        "'/tmp/labyard-evil.txt' has an absolute path",
    ),
    (
        "dotdot.tar.gz",
        [("ok.txt", b"1"), ("a/../../evil.txt", b"x")],
        "'a/../../evil.txt' has a '..' component",
    ),
    (
        "symlink.tar.gz",
        [("ok.txt", b"1"), _link("up", "../../..", tarfile.SYMTYPE), ("up/evil.txt", b"x")],
        "'up' is a symlink leaving the folder",
    ),
    (
        "abslink.tar.gz",
        [_link("passwd", "/etc/passwd", tarfile.SYMTYPE)],
        "'passwd' is a symlink leaving the folder",
    ),
    (
        "hardlink.tar.gz",
        [("ok.txt", b"1"), _link("h", "../../etc/passwd", tarfile.LNKTYPE)],
        "'h' is a hardlink leaving the folder",
    ),
    ("device.tar.gz", [("ok.txt", b"1"), _device("null")], "'null' is a device or special file"),
]


@pytest.mark.parametrize(("name", "entries", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_unsafe_tar_is_refused_whole(
    api: WebClient,
    team: Team,
    settings: Settings,
    database: Database,
    name: str,
    entries: list[object],
    reason: str,
) -> None:
    upload(api, team.owner, team.dataset_id, name, tar_bytes(entries))  # type: ignore[arg-type]
    outside_before = tree(settings.data_dir)
    task = _extract(api, team, name)
    assert task["status"] == "failed"
    assert reason in str(task["message"]) and "nothing was extracted" in str(task["message"])
    assert tree(dataset_root(settings, database, team.dataset_id)) == [name]
    assert tree(settings.data_dir) == outside_before
    assert not os.path.exists("/tmp/labyard-evil.txt")


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("/abs.txt", "has an absolute path"),
        ("../up.txt", "has a '..' component"),
        ("..\\win.txt", "has a '..' component"),
        ("C:/x.txt", "has an absolute path"),
    ],
)
def test_unsafe_zip_is_refused_whole(
    api: WebClient,
    team: Team,
    settings: Settings,
    database: Database,
    entry: str,
    reason: str,
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.txt", b"1")
        archive.writestr(zipfile.ZipInfo(entry), b"x")
    upload(api, team.owner, team.dataset_id, "bad.zip", buffer.getvalue())
    task = _extract(api, team, "bad.zip")
    assert task["status"] == "failed" and reason in str(task["message"])
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["bad.zip"]


def test_zip_symlink_leaving_the_folder_is_refused(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "../../../../etc")
    upload(api, team.owner, team.dataset_id, "l.zip", buffer.getvalue())
    task = _extract(api, team, "l.zip")
    assert task["status"] == "failed" and "symlink leaving the folder" in str(task["message"])
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["l.zip"]


def test_zip_bomb_by_ratio_is_refused(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    bomb = zip_bytes([("zeros.bin", b"\0" * (50 * 1024 * 1024))])
    assert len(bomb) < 100_000
    upload(api, team.owner, team.dataset_id, "bomb.zip", bomb)
    task = _extract(api, team, "bomb.zip")
    assert task["status"] == "failed" and "expands more than 200 times" in str(task["message"])
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["bomb.zip"]


def test_tar_bomb_by_ratio_and_by_entry_count_are_refused(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    upload(
        api,
        team.owner,
        team.dataset_id,
        "zeros.tar.gz",
        tar_bytes([("zeros.bin", b"\0" * (20 * 1024 * 1024))]),
    )
    task = _extract(api, team, "zeros.tar.gz")
    assert task["status"] == "failed" and "expand more than 200 times" in str(task["message"])
    settings.archive_max_entries = 50
    many = tar_bytes([(f"f{i}.txt", b"x") for i in range(51)])
    upload(api, team.owner, team.dataset_id, "many.tar.gz", many)
    task = _extract(api, team, "many.tar.gz")
    assert task["status"] == "failed" and "more than 50 entries" in str(task["message"])
    assert tree(dataset_root(settings, database, team.dataset_id)) == [
        "many.tar.gz",
        "zeros.tar.gz",
    ]


def test_clash_with_existing_files_refuses_and_keeps_them(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    upload(api, team.owner, team.dataset_id, "README.txt", b"mine")
    upload(api, team.owner, team.dataset_id, "a.zip", zip_bytes(FILES))
    task = _extract(api, team, "a.zip")
    assert task["status"] == "failed" and "'README.txt'" in str(task["message"])
    root = dataset_root(settings, database, team.dataset_id)
    assert tree(root) == ["README.txt", "a.zip"] and (root / "README.txt").read_bytes() == b"mine"


def test_extract_after_upload_and_internal_links_work(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    data = tar_bytes(
        [
            ("d/a.txt", b"a"),
            _link("d/b.txt", "a.txt", tarfile.SYMTYPE),
            _link("d/c.txt", "d/a.txt", tarfile.LNKTYPE),
        ]
    )
    placed = upload(api, team.owner, team.dataset_id, "x.tgz", data, extract="1")
    task_id = placed.json()[0]["task_id"]  # type: ignore[attr-defined]
    assert wait_task(api, team.owner, task_id)["status"] == "done"
    root = dataset_root(settings, database, team.dataset_id)
    assert (root / "d" / "b.txt").read_bytes() == b"a" and (
        root / "d" / "c.txt"
    ).read_bytes() == b"a"


def test_extract_refuses_non_archives_and_traversal(api: WebClient, team: Team) -> None:
    upload(api, team.owner, team.dataset_id, "a.txt", b"x")
    url = f"/api/v1/datasets/{team.dataset_id}/extract"
    assert api.post(url, json={"path": "a.txt"}, headers=team.owner).status_code == 422
    for path in ("../1/a.zip", "%2e%2e/x.zip", "..\\x.zip", "missing.zip"):
        assert api.post(url, json={"path": path}, headers=team.owner).status_code == 404


def test_cancel_stops_an_extraction_and_leaves_nothing(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    root = dataset_root(settings, database, team.dataset_id)
    big = tar_bytes([(f"f{i}.bin", os.urandom(1024 * 1024)) for i in range(40)], "w")
    (root / "big.tar").write_bytes(big)
    with database.session() as db:
        task = tasks.start_extraction(
            db,
            settings,
            user=db.merge(_owner(database)),
            dataset_id=team.dataset_id,
            path="big.tar",
        )
        task_id = task.id
    runner = tasks.runner_for(api.app)
    runner.cancel(task_id)  # cancelled before it starts: the first entry already stops it
    with database.session() as db:
        row = db.get(DatasetTask, task_id)
        assert row is not None
    runner.submit(task_id)
    runner.cancel(task_id)
    body = wait_task(api, team.owner, task_id)
    assert body["status"] == "cancelled"
    assert tree(root) == ["big.tar"] and tree(service.work_dir(settings)) == []
    started = api.post(
        f"/api/v1/datasets/{team.dataset_id}/extract", json={"path": "big.tar"}, headers=team.owner
    ).json()
    cancel = api.post(f"/api/v1/dataset-tasks/{started['id']}/cancel", headers=team.owner)
    assert cancel.status_code in (200, 409)
    final = wait_task(api, team.owner, started["id"])
    assert final["status"] in ("cancelled", "done")
    if final["status"] == "cancelled":
        assert tree(root) == ["big.tar"]


def _owner(database: Database) -> object:
    from sqlalchemy import select

    from labyard.auth.models import User

    with database.session() as db:
        return db.scalar(select(User).where(User.username == "ana"))


KILL_SCRIPT = """
import sys, threading
from labyard.config import Settings
from labyard.datasets import tasks
from labyard.db import Database
settings = Settings(data_dir=sys.argv[1], database_url=sys.argv[2], secret_key="x" * 40)
tasks.run_task(settings, Database(sys.argv[2]), int(sys.argv[3]), threading.Event())
"""


def test_server_killed_mid_extraction_leaves_no_partial_files(
    team: Team, settings: Settings, database: Database
) -> None:
    root = dataset_root(settings, database, team.dataset_id)
    (root / "big.tar").write_bytes(
        tar_bytes([(f"f{i:03}.bin", os.urandom(256 * 1024)) for i in range(400)], "w")
    )
    with database.session() as db:
        task_id = tasks.start_extraction(
            db,
            settings,
            user=db.merge(_owner(database)),
            dataset_id=team.dataset_id,
            path="big.tar",
        ).id
    work = tasks.temp_dir(settings, task_id)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            str(settings.data_dir),
            settings.resolved_database_url,
            str(task_id),
        ]
    )
    deadline = time.monotonic() + 60
    while not (work.exists() and len(list(work.iterdir())) >= 3):
        assert proc.poll() is None, "the extraction ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert tree(root) == ["big.tar"]  # the dataset never saw a partial extraction
    tasks.recover(settings, database)  # what the server does when it starts again
    assert not work.exists()
    with database.session() as db:
        task = db.get(DatasetTask, task_id)
        assert task is not None and task.status == "failed"
        assert "server restart" in task.message
    assert tree(root) == ["big.tar"]


def test_recover_finishes_an_extraction_killed_while_moving_in(
    team: Team, settings: Settings, database: Database
) -> None:
    root = dataset_root(settings, database, team.dataset_id)
    (root / "a.zip").write_bytes(zip_bytes(FILES))
    with database.session() as db:
        task = tasks.start_extraction(
            db, settings, user=db.merge(_owner(database)), dataset_id=team.dataset_id, path="a.zip"
        )
        task.status = "moving"  # every entry written, the renames had begun
        task_id = task.id
    work = tasks.temp_dir(settings, task_id)
    (work / "train").mkdir(parents=True)
    (work / "train" / "x.png").write_bytes(b"x")
    (root / "README.txt").write_bytes(b"hi")  # already moved in before the kill
    tasks.recover(settings, database)
    assert tree(root) == ["README.txt", "a.zip", "train", "train/x.png"]
    with database.session() as db:
        assert db.get(DatasetTask, task_id).status == "done"  # type: ignore[union-attr]


def test_entry_through_an_in_archive_symlink_is_refused_whole(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    data = tar_bytes(
        [("real/a.txt", b"a"), _link("d", "real", tarfile.SYMTYPE), ("d/evil.txt", b"x")]
    )
    upload(api, team.owner, team.dataset_id, "through.tar.gz", data)
    task = _extract(api, team, "through.tar.gz")
    assert task["status"] == "failed", task
    assert "'d/evil.txt' goes through the link 'd'" in str(task["message"])
    assert "nothing was extracted" in str(task["message"])
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["through.tar.gz"]
    assert tree(service.work_dir(settings)) == []


def test_chained_symlinks_cannot_point_outside(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    # Each target alone stays inside, but read through the other links they would climb out:
    # 'sub/up' -> '..' is the root, so 'esc' -> 'sub/up/..' is the root's parent on disk, and
    # 'late' -> 'x/y/..' would be too once 'x/y' -> '..' exists. Targets are stored normalized.
    data = tar_bytes(
        [
            _link("late", "x/y/..", tarfile.SYMTYPE),
            ("sub/f.txt", b"f"),
            _link("sub/up", "..", tarfile.SYMTYPE),
            _link("esc", "sub/up/..", tarfile.SYMTYPE),
            ("x/g.txt", b"g"),
            _link("x/y", "..", tarfile.SYMTYPE),
        ]
    )
    upload(api, team.owner, team.dataset_id, "chain.tar.gz", data)
    task = _extract(api, team, "chain.tar.gz")
    assert task["status"] == "done", task
    root = dataset_root(settings, database, team.dataset_id).resolve()
    assert os.readlink(root / "esc") == "sub" and os.readlink(root / "late") == "x"
    for name in ("late", "sub/up", "esc", "x/y"):
        real = (root / name).resolve()
        assert real == root or real.is_relative_to(root), name


def test_hardlink_copies_count_against_the_byte_limit(
    api: WebClient, team: Team, settings: Settings, database: Database
) -> None:
    settings.archive_max_bytes = 10_000
    links = [_link(f"h{i}", "big.bin", tarfile.LNKTYPE) for i in range(3)]
    data = tar_bytes([("big.bin", b"x" * 4000), *links], "w")
    upload(api, team.owner, team.dataset_id, "h.tar", data)
    task = _extract(api, team, "h.tar")
    assert task["status"] == "failed" and "more than 10000 bytes" in str(task["message"])
    assert tree(dataset_root(settings, database, team.dataset_id)) == ["h.tar"]
