"""The progress line and the ETA computed from it.

A job prints, as often as it likes (labyard_job.log_progress does it):

    Progress epoch=3/10 step=120/773

Counters are `name=current/total`, outermost first. Every counter but the innermost names
the unit that is running, counted from 1: `epoch=3/10` says the 3rd of 10 epochs is running,
so 2 are done. The innermost counts units done inside the unit around it: `step=120/773`
says 120 of the running epoch's 773 steps are done (the step within the epoch, never the
global step over all epochs). The fraction done nests them: ((3 - 1) + 120/773) / 10 =
0.2155. The end of epoch 3 is `epoch=3/10 step=773/773` (0.3), the same as
`epoch=4/10 step=0/773`. A single counter counts units done: `epoch=3/10` is 0.3.
Malformed lines are ignored.

The ETA is the time left at the pace measured since the first progress line the job printed
(`start`: its fraction and time), so start-up time before training (imports, loading data)
does not inflate it, and a run resumed from a checkpoint is not taken for a fast one:
    ETA = (elapsed - start_elapsed) * (1 - fraction) / (fraction - start_fraction)
where elapsed runs from the job's start to the time of the progress line. Until the fraction
has moved past the first line's, the pace since the job's start is used instead:
    ETA = elapsed * (1 - fraction) / fraction.
A program that prints `step=0` when training begins (the classification template does) thus
gets an ETA that leaves its start-up out.
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


def eta_seconds(
    fraction: float,
    elapsed: float,
    start: tuple[float, float] | None = None,
) -> float | None:
    """Seconds left at this pace, or None before any progress.

    `elapsed` is the time from the job's start to the progress line; `start` is the first
    progress line's (fraction, elapsed), when known."""
    if start is not None:
        start_fraction, start_elapsed = start
        moved, took = fraction - start_fraction, elapsed - start_elapsed
        if moved > 0 and took >= 0:
            return max(0.0, took * (1 - fraction) / moved)
    if fraction <= 0 or elapsed < 0:
        return None
    return max(0.0, elapsed * (1 - fraction) / fraction)
