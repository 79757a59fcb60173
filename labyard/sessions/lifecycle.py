"""Background work of the sessions domain started with the server (see app.create_app): a
thread that stops idle sessions. Adoption after a restart is the scheduler's, as for jobs."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from labyard.background import run_every
from labyard.config import Settings
from labyard.db import Database
from labyard.sessions import service

CULL_EVERY_S = 30.0


def start(app: FastAPI) -> Callable[[], None]:
    """Start the idle culler; return its stopper."""
    settings: Settings = app.state.settings
    database: Database = app.state.db
    return run_every(
        CULL_EVERY_S, lambda: service.cull_idle(settings, database), name="labyard-session-culler"
    )
