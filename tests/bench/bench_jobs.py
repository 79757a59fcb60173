"""Benchmarks of the job engine (a script, not a test): prints figures and ratios against
baselines measured in the same run.

    .venv/bin/python -m tests.bench.bench_jobs [--docker]

1. creating a 500-job sweep (service call + commit, lab snapshots included);
2. dispatch latency: a 1-GPU job exits, the next queued 1-GPU job's process starts
   (local; docker with --docker), with the scheduler ticking every 0.1 s;
3. a no-op job end to end (submit -> succeeded) against running the command directly;
4. metric lines ingested per second from one chatty job, against parsing alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.jobs import ingest, service
from labyard.jobs.inventory import Inventory
from labyard.jobs.logs import complete_lines, split_stamp
from labyard.jobs.metrics import parse_metric_line
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from tests.factories import make_users_fast

INVENTORY = Inventory(gpus=("0",), cpus=8, memory_mb=8192)
HANDOFF = """\
import os, sys, time
out = os.environ.get("MLSTEAM_OUTPUT_DIR", "/mlsteam/output")
open(os.path.join(out, "start"), "w").write(repr(time.time()))
if sys.argv[-1] == "first":
    while not os.path.exists(os.path.join(out, "go")):
        time.sleep(0.01)
    open(os.path.join(out, "end"), "w").write(repr(time.time()))
"""
CHATTY = "for i in range({n}):\n    print(f'Train step={{i}} loss={{1/(i+1):.5f}} acc=0.5')\n"


def setup(root: Path, executor: str = "local") -> tuple[Settings, Database, int]:
    settings = Settings(
        data_dir=root / "data",
        secret_key="x" * 40,
        start_scheduler=False,
        executor=executor,
        scheduler_interval_seconds=0.1,
        docker_network="none",
    )
    migrate(settings)
    database = Database(settings.resolved_database_url)
    seed(settings, database)
    with database.session() as db:
        db.add(Flavor(name="g1", gpus=1, cpus=0.1, memory_mb=64))
        # docker here has no GPU runtime: the docker hand-off frees a whole-node CPU slot
        db.add(Flavor(name="slot", gpus=0, cpus=1.0, memory_mb=64))
    ana = make_users_fast(database, "ana")["ana"]
    return settings, database, ana.id


def lab(root: Path, script: str, command: str, params: str = "") -> Path:
    folder = root / f"lab-{time.monotonic_ns()}"
    folder.mkdir()
    (folder / "job.py").write_text(script)
    extra = "image: labyard/runner:test\n" if "python3 " in command else ""
    (folder / "mlsteam.yml").write_text(f"command: {command}\n{params}{extra}")
    return folder


def sweep(
    settings: Settings,
    database: Database,
    user_id: int,
    lab_dir: Path,
    grid: dict | None = None,
    flavor: str = "g1",
) -> list[int]:
    with database.session() as db:
        user = db.get(service.User, user_id)
        created = service.create_sweep(
            db,
            user,
            settings=settings,  # type: ignore[arg-type]
            project_id=user.default_project_id,  # type: ignore[union-attr]
            lab_dir=lab_dir,
            flavor=flavor,
            grid=grid,
            inventory=INVENTORY,
        )
        return [j.id for j in db.query(Job).filter_by(sweep_id=created.id).order_by(Job.id)]


def is_final(database: Database, job_id: int) -> bool:
    with database.session() as db:
        return db.get(Job, job_id).status in FINAL_STATUSES  # type: ignore[union-attr]


def wait_final(scheduler: Scheduler, database: Database, ids: list[int]) -> None:
    while True:
        scheduler.tick()
        with database.session() as db:
            if all(db.get(Job, i).status in FINAL_STATUSES for i in ids):  # type: ignore[union-attr]
                return


def bench_sweep(root: Path) -> None:
    settings, database, uid = setup(root / "sweep")
    folder = lab(root, "print('hi')\n", f"{sys.executable} job.py", "params:\n  i: 0\n")
    (folder / "model.py").write_text("# a few KiB of code\n" * 200)
    start = time.perf_counter()
    ids = sweep(settings, database, uid, folder, {"i": list(range(500))})
    took = time.perf_counter() - start
    one = time.perf_counter()
    sweep(settings, database, uid, folder, {"i": [0]})
    single = time.perf_counter() - one
    print(
        f"sweep of {len(ids)} jobs: {took:.2f} s ({took / len(ids) * 1000:.1f} ms/job; "
        f"a 1-job sweep takes {single * 1000:.1f} ms, ratio per job {took / len(ids) / single:.2f})"
    )


def bench_dispatch(root: Path, executor: str, rounds: int = 5) -> None:
    settings, database, uid = setup(root / f"dispatch-{executor}", executor)
    command = f"{sys.executable} job.py" if executor == "local" else "python3 job.py"
    folder = lab(root, HANDOFF, command, "params:\n  role: [first]\n")
    flavor = "g1" if executor == "local" else "slot"
    inventory = INVENTORY if executor == "local" else Inventory(gpus=(), cpus=1.0, memory_mb=8192)
    scheduler = Scheduler(settings, database, inventory=inventory)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    thread.start()
    latencies = []
    try:
        for _ in range(rounds):
            first, second = sweep(
                settings, database, uid, folder, {"role": ["first", "second"]}, flavor=flavor
            )
            out1 = service.job_dir(settings, first) / "output"
            out2 = service.job_dir(settings, second) / "output"
            while not (out1 / "start").exists():
                if is_final(database, first):
                    with database.session() as db:
                        reason = db.get(Job, first).reason  # type: ignore[union-attr]
                    raise SystemExit(f"the {executor} job failed: {reason}")
                time.sleep(0.01)
            (out1 / "go").touch()
            while not (out2 / "start").exists():
                time.sleep(0.01)
            time.sleep(0.05)
            ended = float((out1 / "end").read_text())
            latencies.append(float((out2 / "start").read_text()) - ended)
            while not is_final(database, second):
                time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    print(
        f"dispatch latency ({executor}, tick 0.1 s): median {statistics.median(latencies):.3f} s, "
        f"max {max(latencies):.3f} s over {rounds} hand-offs "
        f"(the job holding the GPU/slot exits -> the next job's process starts)"
    )


def bench_overhead(root: Path, rounds: int = 5) -> None:
    import subprocess

    settings, database, uid = setup(root / "overhead")
    folder = lab(root, "pass\n", f"{sys.executable} job.py")
    direct = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(folder / "job.py")], check=True)
        direct.append(time.perf_counter() - start)
    scheduler = Scheduler(settings, database, inventory=INVENTORY)
    platform = []
    for _ in range(rounds):
        start = time.perf_counter()
        ids = sweep(settings, database, uid, folder, flavor="g1")
        wait_final(scheduler, database, ids)
        platform.append(time.perf_counter() - start)
    d, p = statistics.median(direct), statistics.median(platform)
    print(
        f"no-op job: direct {d * 1000:.0f} ms, through Labyard (submit -> succeeded, "
        f"ticking without pause) {p * 1000:.0f} ms, ratio {p / d:.1f}x"
    )


def bench_ingest(root: Path, lines: int = 200_000) -> None:
    settings, database, uid = setup(root / "ingest")
    folder = lab(root, CHATTY.format(n=lines), f"{sys.executable} job.py")
    scheduler = Scheduler(settings, database, inventory=INVENTORY)
    [job_id] = sweep(settings, database, uid, folder)
    scheduler.dispatch()
    log = service.job_dir(settings, job_id) / "job.log"
    while not (service.job_dir(settings, job_id) / "exit_code").exists():
        time.sleep(0.05)
    start = time.perf_counter()
    with database.session() as db:
        job = db.get(Job, job_id)
        count = ingest.ingest_log(db, job, service.job_dir(settings, job_id), final=True)  # type: ignore[arg-type]
    took = time.perf_counter() - start
    start = time.perf_counter()
    raw, _ = complete_lines(log, 0, 1 << 30)
    for line in raw:
        parse_metric_line(split_stamp(line)[1])
    parse_only = time.perf_counter() - start
    print(
        f"metric ingestion: {count} lines ({2 * count} points) in {took:.2f} s = "
        f"{count / took:,.0f} lines/s into the database; parsing alone "
        f"{len(raw) / parse_only:,.0f} lines/s (ratio {took / parse_only:.1f}x)"
    )
    wait_final(scheduler, database, [job_id])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docker", action="store_true", help="also the docker dispatch latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench_sweep(root)
        bench_dispatch(root, "local")
        if args.docker:
            bench_dispatch(root, "docker")
        bench_overhead(root)
        bench_ingest(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
