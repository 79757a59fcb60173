"""The delivery worker's nudge: set after a transaction that queued deliveries committed."""

from __future__ import annotations

import threading

WAKE = threading.Event()
