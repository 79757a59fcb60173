"""A live chart that outgrows LABYARD_CHART_MAX_POINTS is read again from the server, which
downsamples it (labyard/jobs/metrics.py is the only downsampling): the browser keeps no more
than twice the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from tests.e2e.conftest import login
from tests.e2e.test_job_pages_browser import no_favicon, submit
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MAX_POINTS = 10
STEPS = 90

SCRIPT = f"""\
import os, time
print("waiting", flush=True)
while not os.path.exists(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "go")):
    time.sleep(0.05)
for step in range(1, {STEPS} + 1):
    print(f"Train step={{step}} loss={{1.0 / step:.5f}}", flush=True)
    time.sleep(0.02)
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The scheduler runs in the server; charts keep few points."""
    return settings.model_copy(
        update={
            "start_scheduler": True,
            "scheduler_interval_seconds": 0.2,
            "chart_max_points": MAX_POINTS,
        }
    )


def test_a_long_live_series_is_downsampled_by_the_server(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(database, settings, tmp_path, steps=1, pause=0, script=SCRIPT)
    no_favicon(page)
    login(page, live_server, "ana", PASSWORD)
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if "/metrics?name=" in r.url else None)
    page.goto(f"{live_server}/jobs/{job_id}")
    page.wait_for_function("() => document.getElementById('job-status').textContent === 'running'")
    (service.job_dir(settings, job_id) / "output" / "go").touch()
    page.wait_for_function("() => document.body.getAttribute('data-stream') === 'ended'")
    chart = "#charts .chart[data-metric=loss]"
    page.wait_for_function(
        f"() => {{ const c = document.querySelector('{chart}');"
        f" return c && Number(c.getAttribute('data-points')) <= {2 * MAX_POINTS}; }}"
    )
    assert reads and all(f"points={MAX_POINTS}" in url for url in reads)
    assert all("name=Train_loss" in url for url in reads)


RESUMED = """\
import os, time
for step in range(1, 6):
    print(f"Train step={step} loss=1.0", flush=True)
while not os.path.exists(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "go")):
    time.sleep(0.05)
for step in range(3, 7):  # resumed from step 2's checkpoint: steps 3-5 again
    print(f"Train step={step} loss=0.5", flush=True)
"""


def test_steps_a_resumed_job_redid_are_drawn_once_with_their_latest_value(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(database, settings, tmp_path, steps=1, pause=0, script=RESUMED)
    no_favicon(page)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/jobs/{job_id}")
    chart = "#charts .chart[data-metric=loss]"
    points = f"() => Number(document.querySelector('{chart}')?.getAttribute('data-points'))"
    page.wait_for_function(f"() => ({points})() === 5")
    (service.job_dir(settings, job_id) / "output" / "go").touch()
    page.wait_for_function("() => document.body.getAttribute('data-stream') === 'ended'")
    page.wait_for_function(f"() => ({points})() === 6")  # live: steps 1-6, once each
    page.reload()  # the server's points: the same
    page.wait_for_function(f"() => ({points})() === 6")
    answer = page.request.get(f"{live_server}/api/v1/jobs/{job_id}/metrics?name=Train_loss")
    assert answer.json()["points"] == [[1.0, 1.0], [2.0, 1.0]] + [[x, 0.5] for x in (3, 4, 5, 6)]
