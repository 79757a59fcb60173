"""Background work of the datasets domain started with the server (see app.create_app):
the extraction thread pool, recovery of interrupted extractions, the upload reaper."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI

from labyard.background import run_every
from labyard.config import Settings
from labyard.datasets import tasks, uploads
from labyard.db import Database

log = logging.getLogger(__name__)
REAP_EVERY_S = 600.0


def start(app: FastAPI) -> Callable[[], None]:
    """Recover interrupted extractions, start the task pool and the reaper; return the stopper."""
    settings: Settings = app.state.settings
    database: Database = app.state.db
    tasks.recover(settings, database)
    uploads.reap_expired(settings, database)
    runner = tasks.runner_for(app)
    stop_reaper = run_every(
        REAP_EVERY_S, lambda: uploads.reap_expired(settings, database), name="labyard-upload-reaper"
    )

    def stopper() -> None:
        stop_reaper()
        runner.shutdown()
        app.state.dataset_runner = None

    return stopper
