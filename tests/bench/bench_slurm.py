"""Benchmarks of the Slurm executor on the two-node test cluster (a script, not a test):

    .venv/bin/python -m tests.bench.bench_slurm

1. queued -> running: a one-job sweep through the platform (scheduler ticking every 0.1 s)
   until the job's process starts, against `sbatch` by hand until a process of the same
   run time starts (median of 5 each; each submitted as the previous one starts);
2. a 200-job sweep (scheduler ticking every 1 s, the default): time until all 200 are handed
   to Slurm (pending limit 200) against 200 `sbatch` calls by hand, then the platform's CPU
   while it follows them to the end
   (process CPU time of the bench process, the scheduler's thread and a 0.5 s poll of its
   own, against wall time; the jobs run under slurmstepd).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.jobs import service
from labyard.jobs.models import FINAL_STATUSES, Job
from labyard.jobs.scheduler import Scheduler
from tests import services
from tests.factories import make_users_fast

STAMP = """\
import os, sys, time
open(os.path.join(os.environ.get("MLSTEAM_OUTPUT_DIR", "."), "start"), "w").write(repr(time.time()))
for step in range(1, 21):
    print(f"Train step={step} loss={1 / step:.4f}", flush=True)
    time.sleep(0.1)
"""
# the same stamp and run time by hand (Slurm starts a job later while another runs, so both
# sides submit the next job as the previous one starts)
BY_HAND = "#!{python}\nimport time\nopen({path!r}, 'w').write(repr(time.time()))\ntime.sleep(2)\n"
ROUNDS = 5


def setup(root: Path, conf: Path) -> tuple[Settings, Database, int]:
    settings = Settings(
        data_dir=root / "data",
        secret_key="x" * 40,
        start_scheduler=False,
        executor="slurm",
        slurm_conf=str(conf),
        slurm_max_pending_per_project=200,
        scheduler_interval_seconds=0.1,
    )
    migrate(settings)
    database = Database(settings.resolved_database_url)
    seed(settings, database)
    with database.session() as db:
        db.add(Flavor(name="s0", gpus=0, cpus=1, memory_mb=256))
    return settings, database, make_users_fast(database, "ana")["ana"].id


def sweep(settings: Settings, database: Database, user_id: int, lab: Path, n: int) -> list[int]:
    with database.session() as db:
        user = db.get(service.User, user_id)
        assert user is not None
        created = service.create_sweep(
            db, user, settings=settings, project_id=user.default_project_id, lab_dir=lab,
            flavor="s0", grid={"n": list(range(n))},
        )  # fmt: skip
        return [j.id for j in db.query(Job).filter_by(sweep_id=created.id).order_by(Job.id)]


def write_lab(root: Path) -> Path:
    lab = root / "lab"
    lab.mkdir()
    (lab / "job.py").write_text(STAMP)
    (lab / "mlsteam.yml").write_text(f"command: {sys.executable} job.py\nparams:\n  n: [0]\n")
    return lab


def wait_for(path: Path) -> float:
    while not path.exists() or not path.read_text():
        time.sleep(0.01)
    return float(path.read_text())


def by_hand(root: Path, conf: Path) -> float:
    """sbatch a script that stamps its start; seconds from sbatch to the stamp."""
    stamp = root / f"hand-{time.monotonic_ns()}"
    script = BY_HAND.format(python=sys.executable, path=str(stamp))
    env = {"SLURM_CONF": str(conf), "PATH": "/usr/bin:/bin"}
    began = time.time()
    subprocess.run(
        ["sbatch", "--parsable", "--mem=256M", "--output=/dev/null", f"--chdir={root}"],
        input=script, text=True, check=True, capture_output=True, env=env,
    )  # fmt: skip
    return wait_for(stamp) - began


def many_by_hand(root: Path, conf: Path, n: int) -> float:
    """Seconds for `n` sbatch calls by hand (jobs that end at once), the hand-over baseline."""
    script = BY_HAND.format(python=sys.executable, path="/dev/null").replace("time.sleep(2)", "")
    env = {"SLURM_CONF": str(conf), "PATH": "/usr/bin:/bin"}
    began = time.monotonic()
    for _ in range(n):
        subprocess.run(
            ["sbatch", "--parsable", "--mem=256M", "--output=/dev/null", f"--chdir={root}"],
            input=script, text=True, check=True, capture_output=True, env=env,
        )  # fmt: skip
    return time.monotonic() - began


def through_platform(settings: Settings, database: Database, user_id: int, lab: Path) -> float:
    """A one-job sweep with the scheduler ticking; seconds from the commit to the stamp."""
    began = time.time()
    [job_id] = sweep(settings, database, user_id, lab, 1)
    return wait_for(service.job_dir(settings, job_id) / "output" / "start") - began


def ticking(scheduler: Scheduler) -> tuple[threading.Event, threading.Thread]:
    """The scheduler's loop (`run` without its start-up probe, which the bench does not time)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            scheduler.tick()
            stop.wait(scheduler.settings.scheduler_interval_seconds)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return stop, thread


def all_handed(database: Database, ids: list[int]) -> bool:
    with database.read_session() as db:
        return all(db.get(Job, i).external_id for i in ids)  # type: ignore[union-attr]


def all_final(database: Database, ids: list[int]) -> bool:
    with database.read_session() as db:
        return all(db.get(Job, i).status in FINAL_STATUSES for i in ids)  # type: ignore[union-attr]


def spread(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def main() -> int:
    cluster = services.slurm_cluster()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings, database, user_id = setup(root, cluster.conf)
        lab = write_lab(root)
        hand = [by_hand(root, cluster.conf) for _ in range(ROUNDS)]
        scheduler = Scheduler(settings, database)
        stop, thread = ticking(scheduler)
        platform = [through_platform(settings, database, user_id, lab) for _ in range(ROUNDS)]
        stop.set()
        thread.join()
        h, p = statistics.median(hand), statistics.median(platform)
        print(f"queued -> running, sbatch by hand: median {h:.2f} s (of {spread(hand)})")
        print(f"queued -> running, through Labyard: median {p:.2f} s (of {spread(platform)})")
        print(f"ratio platform / by hand: {p / h:.2f}")
        time.sleep(3)  # the last one ends
        raw = many_by_hand(root, cluster.conf, 200)
        print(f"200 sbatch calls by hand: {raw:.1f} s")

        ids = sweep(settings, database, user_id, lab, 200)
        # the sweep at the default tick interval (1 s), as a server runs it
        scheduler = Scheduler(
            settings.model_copy(update={"scheduler_interval_seconds": 1.0}), database
        )
        cpu0, wall0 = time.process_time(), time.monotonic()
        stop, thread = ticking(scheduler)
        while not all_handed(database, ids):
            time.sleep(0.05)
        handed = time.monotonic() - wall0
        cpu1, wall1 = time.process_time(), time.monotonic()
        while not all_final(database, ids):
            time.sleep(0.5)
        cpu2, wall2 = time.process_time(), time.monotonic()
        stop.set()
        thread.join()
        with database.read_session() as db:
            done = sum(db.get(Job, i).status == "succeeded" for i in ids)  # type: ignore[union-attr]
        print(
            f"200-job sweep: all handed to Slurm in {handed:.1f} s ({cpu1 - cpu0:.1f} s CPU), "
            f"{handed / raw:.2f}x the sbatch calls by hand"
        )
        follow_cpu, follow_wall = cpu2 - cpu1, wall2 - wall1
        print(
            f"following them to the end: {follow_wall:.1f} s wall, {follow_cpu:.1f} s CPU of the "
            f"platform ({100 * follow_cpu / follow_wall:.0f}% of one core); {done}/200 succeeded"
        )
        database.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
