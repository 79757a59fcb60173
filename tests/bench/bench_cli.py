"""CLI upload benchmark (a script, not a test): `labyard dataset upload` of one large file
to a real `labyard serve` over loopback (tus, the command's default chunks, the progress
bar drawn), against `cp` of the same file to the same disk, in the same run.

    .venv/bin/python -m tests.bench.bench_cli [--full]    # 64 MiB; --full: 1 GiB
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labyard.datasets.service import datasets_root
from tests.bench.bench_datasets import PASSWORD, _start_server, _write_random
from tests.serving import free_port


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    os.sync()
    return time.perf_counter() - started


def _json(argv: list[str], env: dict[str, str]) -> Any:
    return json.loads(subprocess.run(argv, env=env, check=True, capture_output=True).stdout)


def bench_upload(work: Path, size: int) -> None:
    """Print the CLI's MB/s and its time against `cp`'s."""
    source = work / "big.bin"
    _write_random(source, size)
    cp_s = _timed(["cp", str(source), str(work / "copy.bin")])
    (work / "copy.bin").unlink()
    port = free_port()
    server = _start_server(work / "data", port)
    try:
        env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config")}
        labyard = [sys.executable, "-m", "labyard.cli"]
        login = [*labyard, "login", f"http://127.0.0.1:{port}", "-u", "admin", "--password-stdin"]
        subprocess.run(login, input=PASSWORD, text=True, env=env, check=True)
        project = _json([*labyard, "projects", "--json"], env)[0]["id"]
        create = [*labyard, "dataset", "create", "bench", "--project", str(project), "--json"]
        dataset = int(_json(create, env)["id"])
        cli_s = _timed([*labyard, "dataset", "upload", str(dataset), str(source)], env)
        stored = datasets_root_of(work / "data", dataset) / "big.bin"
        assert stored.stat().st_size == size, "the uploaded file has the wrong size"
    finally:
        server.kill()
        server.wait()
    mib = size / 2**20
    print(
        f"upload {mib:.0f} MiB: labyard dataset upload {cli_s:.2f} s ({mib / cli_s:.0f} MiB/s, "
        f"a new process included); cp {cp_s:.2f} s ({mib / cp_s:.0f} MiB/s); "
        f"ratio {cli_s / cp_s:.1f}x cp"
    )


def datasets_root_of(data_dir: Path, dataset: int) -> Path:
    """A dataset's folder in a server's data folder."""
    from labyard.config import Settings

    return datasets_root(Settings(data_dir=data_dir)) / str(dataset)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="1 GiB instead of 64 MiB")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="labyard-bench-", dir=os.environ.get("BENCH_DIR")))
    try:
        bench_upload(work, (1024 if args.full else 64) * 2**20)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
