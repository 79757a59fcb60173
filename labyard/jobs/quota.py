"""Per-job output disk quota (setting `job_output_quota_bytes`), for every executor.

The scheduler asks `QuotaWatch.over()` for each running job, outside any transaction. The
output folder is measured by an `os.scandir` walk that follows no links, counts the disk
blocks really used (a sparse file costs what it holds) and stops as soon as the quota is
passed; each job is measured again only after a pause that grows with how long its last
walk took, so a big folder costs a bounded share of the scheduler's time. A job past its
quota is asked to stop like a user stop (SIGTERM, then SIGKILL after the grace period),
with the reason kept on the job.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from labyard.config import Settings

QUOTA_REASON = (
    "output quota exceeded: the output folder used over {used} bytes; the limit is {limit} "
    "bytes (setting LABYARD_JOB_OUTPUT_QUOTA_BYTES)"
)
MIN_PAUSE_SECONDS = 2.0
PAUSE_PER_WALK = 20  # measure again after 20 times what the last walk took


def disk_usage(folder: Path, stop_above: int | None = None) -> int:
    """Bytes of disk the files under `folder` use (links not followed); stops past `stop_above`."""
    total = 0
    pending = [str(folder)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        pending.append(entry.path)
        except OSError:  # vanished or unreadable meanwhile
            continue
        if stop_above is not None and total > stop_above:
            break
    return total


class QuotaWatch:
    """Throttled quota checks of running jobs' output folders."""

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.job_output_quota_bytes
        self.min_pause = max(MIN_PAUSE_SECONDS, 2 * settings.scheduler_interval_seconds)
        self._next: dict[int, float] = {}  # job id -> monotonic time of its next check

    def over(self, job_id: int, output_dir: Path) -> str | None:
        """The reason to stop the job if its output is past the quota (when due), else None."""
        now = time.monotonic()
        if not self.limit or now < self._next.get(job_id, 0.0):
            return None
        used = disk_usage(output_dir, stop_above=self.limit)
        took = time.monotonic() - now
        self._next[job_id] = now + max(self.min_pause, PAUSE_PER_WALK * took)
        if used <= self.limit:
            return None
        return QUOTA_REASON.format(used=used, limit=self.limit)

    def forget(self, job_id: int) -> None:
        """Drop a finished job's schedule."""
        self._next.pop(job_id, None)
