"""The delivery worker started with the server (see app.create_app): a daemon thread that
sends due deliveries every `notification_poll_seconds`, and at once when a transaction that
queued some commits (labyard.notifications.wake)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fastapi import FastAPI

from labyard.config import Settings
from labyard.db import Database
from labyard.notifications.delivery import deliver_due
from labyard.notifications.wake import WAKE

log = logging.getLogger(__name__)


def run_worker(settings: Settings, database: Database, stop: threading.Event) -> None:
    """Deliver until `stop` is set."""
    while not stop.is_set():
        WAKE.clear()
        try:
            deliver_due(settings, database)
        except Exception:  # noqa: BLE001 - a transient database error must not end the worker
            log.exception("delivering notifications failed")
        WAKE.wait(settings.notification_poll_seconds)


def start(app: FastAPI) -> Callable[[], None]:
    """Start the delivery worker; return the stopper."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run_worker,
        args=(app.state.settings, app.state.db, stop),
        name="labyard-notifications",
        daemon=True,
    )
    thread.start()

    def stopper() -> None:
        stop.set()
        WAKE.set()
        thread.join(timeout=5)

    return stopper
