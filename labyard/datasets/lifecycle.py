"""Background work of the datasets domain started with the server (see app.create_app):
the extraction thread pool, recovery of interrupted extractions, the upload reaper."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fastapi import FastAPI

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
    stop = threading.Event()

    def reap_forever() -> None:
        while not stop.wait(REAP_EVERY_S):
            try:
                uploads.reap_expired(settings, database)
            except Exception:  # noqa: BLE001 - keep reaping after a transient error
                log.exception("reaping expired uploads failed")

    reaper = threading.Thread(target=reap_forever, name="labyard-upload-reaper", daemon=True)
    reaper.start()

    def stopper() -> None:
        stop.set()
        runner.shutdown()
        app.state.dataset_runner = None

    return stopper
