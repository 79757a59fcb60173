"""`labyard dataset upload` against a live server: a folder (small files in multipart
batches, a larger one over tus), and a large file that resumes where it stopped after the
server was killed mid-upload and started again on the same data folder."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.datasets.service import datasets_root, upload_file
from tests.integration.cli.conftest import Cli, Server
from tests.serving import wait_until


def _dataset(cli: Cli, name: str) -> int:
    project = str(cli.api("GET", "/api/v1/projects").json()[0]["id"])
    made = cli("dataset", "create", name, "--project", project, "--json")
    assert made.exit_code == 0, made.output
    return int(json.loads(made.stdout)["id"])


def test_folder_upload(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    cli.login()
    dataset = _dataset(cli, "pictures")
    folder = tmp_path / "pics"
    (folder / "cats").mkdir(parents=True)
    (folder / "a.txt").write_text("first")
    (folder / "cats" / "b.txt").write_text("second")
    (folder / "big.bin").write_bytes(os.urandom(300_000))
    done = cli("dataset", "upload", "pictures", str(folder), "--chunk-size", "64k", "--json")
    assert done.exit_code == 0, done.output
    placed = sorted(json.loads(done.stdout), key=lambda p: p["path"])
    assert [(p["path"], p["size"]) for p in placed] == [
        ("pics/a.txt", 5),
        ("pics/big.bin", 300_000),
        ("pics/cats/b.txt", 6),
    ]
    root = datasets_root(settings) / str(dataset)
    for rel in ("a.txt", "cats/b.txt", "big.bin"):
        assert (root / "pics" / rel).read_bytes() == (folder / rel).read_bytes()
    shown = cli.api("GET", f"/api/v1/datasets/{dataset}").json()
    assert shown["file_count"] == 3
    assert cli("dataset", "upload", "no-such-dataset", str(folder)).exit_code == 1


def _upload_id(cli: Cli) -> str | None:
    state = cli.home / "labyard" / "uploads.json"
    if not state.exists():
        return None
    [entry] = json.loads(state.read_text()).values()
    return str(entry["location"]).rsplit("/", 1)[1]


@pytest.mark.slow
def test_upload_resumes_after_a_server_restart(
    cli: Cli, server: Server, settings: Settings, tmp_path: Path
) -> None:
    cli.login()
    dataset = _dataset(cli, "big")
    data = tmp_path / "big.bin"
    data.write_bytes(os.urandom(16 * 1024**2))
    argv = ("dataset", "upload", str(dataset), str(data), "--chunk-size", "128k")
    first = cli.popen(*argv)
    wait_until(lambda: _upload_id(cli) is not None, "the upload to be created", timeout=60)
    work = upload_file(settings, str(_upload_id(cli)))
    wait_until(lambda: work.exists() and work.stat().st_size >= 1024**2, "a MiB to arrive")
    os.kill(first.pid, signal.SIGSTOP)  # hold the client while the server dies under it
    server.kill()
    os.kill(first.pid, signal.SIGCONT)
    stopped = Cli.popen_wait(first)
    assert stopped.returncode == 1, stopped.stderr
    assert "run the same command again to resume" in stopped.stderr
    held = work.stat().st_size
    assert 0 < held < data.stat().st_size

    server.up()
    second = cli.run(*argv, "--json")
    assert second.returncode == 0, second.stderr
    resumed = re.search(r"Resuming .* at byte (\d+) of (\d+)", second.stderr)
    assert resumed, second.stderr
    assert int(resumed.group(1)) == held and int(resumed.group(2)) == data.stat().st_size
    [placed] = json.loads(second.stdout)
    assert placed["path"] == "big.bin" and placed["size"] == data.stat().st_size
    stored = datasets_root(settings) / str(dataset) / "big.bin"
    assert stored.read_bytes() == data.read_bytes()
    assert not work.exists()
    assert json.loads((cli.home / "labyard" / "uploads.json").read_text()) == {}
