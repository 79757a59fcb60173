"""The progress line and the ETA computed from it.

A job prints, as often as it likes (labyard_job.log_progress does it):

    Progress epoch=3/10 step=120/773

Counters are `name=current/total`, outermost first. The fraction done nests them: the
innermost counts `current/total`; each outer one counts its finished units plus the inner
fraction: `((current - 1) + inner) / total`. For the line above that is
((3 - 1) + 120/773) / 10 = 0.2155. A single counter `epoch=3/10` means 3 of 10 done (0.3).
ETA = elapsed * (1 - fraction) / fraction, where elapsed runs from the job's start to the
time of the progress line. Malformed lines are ignored.
"""

from __future__ import annotations

import re

_COUNTER_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,31})=(\d{1,12})/(\d{1,12})$")
MAX_COUNTERS = 8


def parse_progress(text: str) -> float | None:
    """The fraction done (0..1) from a progress line, or None when it is not one."""
    parts = text.split()
    if len(parts) < 2 or parts[0] != "Progress" or len(parts) > MAX_COUNTERS + 1:
        return None
    counters = []
    for part in parts[1:]:
        match = _COUNTER_RE.match(part)
        if match is None:
            return None
        current, total = int(match.group(2)), int(match.group(3))
        if total <= 0 or current > total:
            return None
        counters.append((current, total))
    current, total = counters[-1]
    fraction = current / total
    for current, total in reversed(counters[:-1]):
        fraction = (max(current - 1, 0) + fraction) / total
    return min(max(fraction, 0.0), 1.0)


def eta_seconds(fraction: float, elapsed: float) -> float | None:
    """Seconds left at this pace, or None before any progress."""
    if fraction <= 0 or elapsed < 0:
        return None
    return max(0.0, elapsed * (1 - fraction) / fraction)
