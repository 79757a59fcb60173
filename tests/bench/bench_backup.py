"""Backup throughput (a script, not a test): `labyard backup` of a data folder of about
500 MB in many files, against `cp -a` of the same folder in the same run.

The installation: 200 job rows and 20 dataset rows (a backup copies only the folders of
rows its database snapshot holds) whose folders hold MB / 0.25 files of 256 KiB (outputs,
shards) and 10,000 files of 1 KiB, random bytes, with each job's lab snapshot and log.
Both copies read from the page cache (the folder was just written). They are measured
twice: without sync (the copying alone: `backup(sync=False)`), and with a sync after each
(as `labyard backup` runs: it syncs before it writes its manifest); a sync's time depends
on everything else the machine wrote, so the first pair is the steadier comparison. Each
round runs both, which one goes first alternating; the best of each is reported.

    .venv/bin/python -m tests.bench.bench_backup [--mb 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from labyard.bootstrap import migrate
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.service import job_dir
from labyard.ops.backup import backup
from tests.factories import make_dataset, make_sweep_row, make_users_fast

BIG = 256 * 1024
SMALL = 1024
SMALL_FILES = 10_000


def make_installation(settings: Settings, megabytes: int) -> tuple[int, int]:
    """200 job rows and 20 dataset rows whose folders hold about `megabytes` MB; (files,
    bytes) of the data folder (the SQLite database aside)."""
    database = Database(settings.resolved_database_url)
    owner = make_users_fast(database, "bench")["bench"]
    project = owner.default_project_id
    assert project is not None
    _, jobs = make_sweep_row(database, settings, project, [{} for _ in range(200)])
    datasets = [make_dataset(database, settings, owner, project, f"d{n}") for n in range(20)]
    database.dispose()
    big = megabytes * 1024 * 1024 // BIG
    for n in range(big + SMALL_FILES):
        if n % 3:
            folder = job_dir(settings, jobs[n % len(jobs)]) / "output"
        else:
            folder = settings.data_dir / "datasets" / str(datasets[n % len(datasets)]) / "part"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{n}.bin").write_bytes(os.urandom(BIG if n < big else SMALL))
    files = [p for p in settings.data_dir.rglob("*") if p.is_file() and "labyard.db" not in p.name]
    return len(files), sum(p.stat().st_size for p in files)


def timed(run: Callable[[], object], *, sync: bool) -> float:
    """Seconds `run()` took, and a sync after it when `sync`."""
    start = time.perf_counter()
    run()
    if sync:
        os.sync()
    return time.perf_counter() - start


def _rounds(settings: Settings, base: Path, rounds: int, *, sync: bool) -> dict[str, float]:
    """The best seconds of `cp -a` and of the backup over `rounds` rounds (which one goes
    first alternates). Copies are kept until the end: removing them between runs made the
    next run pay for the freeing (each round's first run was 2-8x slower, whichever tool)."""
    best = {"cp -a": float("inf"), "labyard backup": float("inf")}
    for n in range(rounds):
        tag = f"{'sync' if sync else 'nosync'}{n}"
        cp_dst, backup_dst = base / f"cp-{tag}", base / f"backup-{tag}"
        runs: dict[str, Callable[[], object]] = {
            "cp -a": partial(subprocess.run, ["cp", "-a", settings.data_dir, cp_dst], check=True),
            "labyard backup": partial(backup, settings, backup_dst, sync=sync),
        }
        order = list(runs) if n % 2 == 0 else list(reversed(runs))
        took = {name: timed(runs[name], sync=sync) for name in order}
        for name, seconds in took.items():
            best[name] = min(best[name], seconds)
        shown = ", ".join(f"{k} {v:.2f} s" for k, v in took.items())
        print(f"{'with' if sync else 'without'} sync, round {n + 1}: {shown}", flush=True)
    return best


def main() -> None:
    """Build the folder, then alternate `cp -a` and `labyard backup`; print MB/s."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        base = Path(tmp)
        settings = Settings(data_dir=base / "data", secret_key="b" * 40, start_scheduler=False)
        migrate(settings)
        files, size = make_installation(settings, args.mb)
        os.sync()
        mb = size / 1e6
        print(f"data folder: {files} files, {mb:.0f} MB")
        for sync in (False, True):
            best = _rounds(settings, base, args.rounds, sync=sync)
            for name, seconds in best.items():
                print(f"{name:>15}: {seconds:.2f} s, {mb / seconds:.0f} MB/s")
            ratio = best["labyard backup"] / best["cp -a"]
            print(
                f"{'with' if sync else 'without'} sync: labyard backup takes {ratio:.2f}x the "
                f"time of cp -a (best of {args.rounds})"
            )


if __name__ == "__main__":
    main()
