"""Benchmark of the home overview (a script, not a test): `python -m tests.bench.bench_overview`.

A node with 16 GPUs (LABYARD_GPUS=0..15). The baseline is the overview with no jobs at all,
measured in the same run; then the same page with 50 running jobs (16 of them holding one
GPU each, the rest CPU jobs with progress and ETA), 200 queued and 2,000 finished jobs
(500 failed). Server time (median of 15) of the page, its live fragment (polled every 5 s)
and its JSON twin, for a member of the project and for an admin.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from labyard.app import create_app
from labyard.auth.models import User
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs.models import Job
from tests.factories import make_users_fast, session_client

GPUS = 16
RUNNING, QUEUED, FINISHED, FAILED = 50, 200, 1500, 500


def timed(fn: Callable[[], Any], repeat: int = 15) -> float:
    """Median seconds of `fn` over `repeat` runs (after two warm-ups)."""
    fn()
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def add_jobs(database: Database, project_id: int) -> None:
    """The busy installation: running, queued, finished and failed jobs."""
    now = utcnow()
    base = {"project_id": project_id, "params": {"lr": 0.1}, "command": ["true"], "flavor": "x"}
    rows: list[dict[str, Any]] = []
    for i in range(RUNNING):
        gpu = [str(i)] if i < GPUS else []
        rows.append(
            {
                **base,
                "name": f"running-{i}",
                "status": "running",
                "gpus": len(gpu),
                "assigned_gpus": gpu,
                "started_at": now,
                "progress_fraction": i / RUNNING,
                "eta_seconds": 60.0 * i,
                "progress_line": f"Progress epoch={i % 10}/10",
            }
        )
    rows += [{**base, "name": f"queued-{i}", "status": "queued"} for i in range(QUEUED)]
    for i in range(FINISHED + FAILED):
        failed = i < FAILED
        rows.append(
            {
                **base,
                "name": f"done-{i}",
                "status": "failed" if failed else "succeeded",
                "reason": "CUDA out of memory" if failed else "",
                "exit_code": 1 if failed else 0,
                "started_at": now,
                "finished_at": now,
            }
        )
    with database.session() as db:
        db.execute(insert(Job), rows)


def measure(app: Any, database: Database, users: dict[str, User]) -> dict[str, float]:
    """Median ms of each overview request for each user."""
    out = {}
    for who, user in users.items():
        with session_client(app, database, user) as client:
            for label, path in (
                ("page", "/"),
                ("live", "/overview/live"),
                ("api", "/api/v1/overview"),
            ):
                out[f"{who} {label}"] = 1000 * timed(
                    lambda p=path: client.get(p).raise_for_status()
                )  # type: ignore[misc]
    return out


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=f"sqlite:///{tmp}/bench.db",
            secret_key="bench-secret-key-for-labyard-0123456789abcdef",
            start_scheduler=False,
            admin_password="bench-admin-password",
            gpus=",".join(str(i) for i in range(GPUS)),
        )
        migrate(settings)
        database = Database(settings.resolved_database_url)
        seed(settings, database)
        app = create_app(settings, database=database)
        member = make_users_fast(database, "bench")["bench"]
        with database.session() as db:
            admin = db.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and member.default_project_id is not None
        users = {"member": member, "admin": admin}
        empty = measure(app, database, users)
        add_jobs(database, member.default_project_id)
        busy = measure(app, database, users)
        print(
            f"overview, {GPUS} GPUs: empty vs {RUNNING} running, {QUEUED} queued, "
            f"{FINISHED + FAILED} finished ({FAILED} failed)"
        )
        for key in empty:
            print(
                f"  {key:14} empty {empty[key]:7.1f} ms   busy {busy[key]:7.1f} ms"
                f"   ratio {busy[key] / empty[key]:.2f}x"
            )
        database.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
