"""Background work of the jobs domain started with the server (see app.create_app)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI


def start(app: FastAPI) -> Callable[[], None]:
    """Start background work; return the function that stops it."""
    return lambda: None
