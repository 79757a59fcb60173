"""Background work of the jobs domain started with the server (see app.create_app):
the scheduler thread (only when `start_scheduler` is set)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fastapi import FastAPI

from labyard.config import Settings
from labyard.db import Database

if TYPE_CHECKING:
    from labyard.jobs.scheduler import SchedulerStep


def start_scheduler_thread(
    settings: Settings, database: Database, steps: Sequence[SchedulerStep] = ()
) -> Callable[[], None]:
    """Run a Scheduler (with the higher domains' `steps`) in a daemon thread; return the
    function that stops it."""
    from labyard.jobs.scheduler import Scheduler

    scheduler = Scheduler(settings, database, steps=steps)
    stop = threading.Event()
    thread = threading.Thread(
        target=scheduler.run, args=(stop,), name="labyard-scheduler", daemon=True
    )
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=30)

    return stopper


def start(app: FastAPI) -> Callable[[], None]:
    """Start the scheduler; return the function that stops it (jobs keep running)."""
    return start_scheduler_thread(
        app.state.settings, app.state.db, getattr(app.state, "scheduler_steps", ())
    )


def run_scheduler_forever(settings: Settings, steps: Sequence[SchedulerStep] = ()) -> int:
    """`labyard scheduler` (after migrating): schedule until SIGINT/SIGTERM."""
    import signal

    from labyard.db.urls import shown_url
    from labyard.jobs.scheduler import Scheduler

    database = Database(settings.resolved_database_url)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(
        f"Labyard scheduler: executor {settings.executor}, database "
        f"{shown_url(settings.resolved_database_url)}",
        flush=True,
    )
    Scheduler(settings, database, steps=steps).run(stop)
    database.dispose()
    return 0
