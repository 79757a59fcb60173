"""Periodic background work in a daemon thread, for the domains' start hooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def run_every(seconds: float, work: Callable[[], object], *, name: str) -> Callable[[], None]:
    """Call `work()` every `seconds` in a daemon thread; return the function that stops it.

    An exception is logged and the next round runs anyway, so a transient database or disk
    error does not end the reaper.
    """
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                work()
            except Exception:  # noqa: BLE001 - keep going after a transient error
                log.exception("background work %r failed", name)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=5)

    return stopper
