"""Background work of the tensorboard domain started with the server (see app.create_app):
on start, instances whose process is gone are marked stopped (live ones are adopted); a
reaper thread stops idle ones; on stop, the processes this server started are stopped."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI

from labyard.background import run_every
from labyard.config import Settings
from labyard.db import Database
from labyard.tensorboard import service

log = logging.getLogger(__name__)
REAP_EVERY_S = 30.0


def reap_once(settings: Settings, database: Database) -> list[int]:
    """One reaper pass in its own transaction; the ids of the instances it stopped."""
    with database.session() as db:
        return service.reap(db, settings)


def start(app: FastAPI) -> Callable[[], None]:
    """Mark dead instances stopped, start the idle reaper; return the stopper."""
    settings: Settings = app.state.settings
    database: Database = app.state.db
    reap_once(settings, database)
    stop_reaper = run_every(
        REAP_EVERY_S, lambda: reap_once(settings, database), name="labyard-tensorboard-reaper"
    )

    def stopper() -> None:
        stop_reaper()
        try:
            with database.session() as db:
                service.stop_children(db)
        except Exception:  # noqa: BLE001 - shutting down: log, never block the exit
            log.exception("stopping TensorBoard processes failed")

    return stopper
