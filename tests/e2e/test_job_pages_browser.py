"""Browser tests of the job pages against a real server running real jobs (local executor):
the chart and the log grow while the page is open, the ETA counts down, Stop stops the
process, and two tabs on one job both receive every log line."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.models import Job
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_job_flavors, make_users_fast

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCRIPT = """\
import signal, sys, time
steps, pause = int(sys.argv[2]), float(sys.argv[4])
signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), sys.exit(143)))
print("\\x1b[1;32mstarting\\x1b[0m <b>not bold</b>", flush=True)
for step in range(1, steps + 1):
    print(f"Train step={step} loss={1.0 / step:.5f}", flush=True)
    print(f"Progress step={step}/{steps}", flush=True)
    print(f"line {step}", flush=True)
    time.sleep(pause)
print("finished", flush=True)
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test's settings with the scheduler running in the server."""
    return settings.model_copy(update={"start_scheduler": True, "scheduler_interval_seconds": 0.2})


WAITING_SCRIPT = """\
import os, sys, time
print("waiting", flush=True)
go = os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "go")
while not os.path.exists(go):
    time.sleep(0.05)
print("\\x1b[1;31mred\\x7f\\x07 <i>x</i>\\x1b[22m dim?\\x1b[2m dim\\x1b[0m plain", flush=True)
print("\\x1b[38;2;1;2;3mtrue colour\\x1b[48;5;4m on blue\\x1b[0m 10%\\r50%\\r100%", flush=True)
print("tab\\there \\x1b]0;title\\x07after \\x1b[Kend", flush=True)
"""


def submit(
    database: Database,
    settings: Settings,
    tmp_path: Path,
    steps: int,
    pause: float,
    script: str = SCRIPT,
) -> int:
    """A one-job sweep of ana's running the script; its job id."""
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "train.py").write_text(script)
    (lab / "mlsteam.yml").write_text(
        f"command: {shlex.quote(sys.executable)} train.py\n"
        f"params:\n  steps: [{steps}]\n  pause: [{pause}]\n"
    )
    make_job_flavors(database)
    ana = make_users_fast(database, "ana")["ana"]
    with database.session() as db:
        user = db.get(service.User, ana.id)
        assert user is not None and user.default_project_id is not None
        sweep = service.create_sweep(
            db,
            user,
            settings=settings,
            project_id=user.default_project_id,
            lab_dir=lab,
            flavor="tiny",
        )
        return db.query(Job).filter_by(sweep_id=sweep.id).one().id


def no_favicon(page: Any) -> None:
    """The app serves no /favicon.ico yet: answer the browser's own request for it."""
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))


def seconds(text: str) -> int:
    """'0:01:05' -> 65."""
    h, m, s = (int(p) for p in text.split(":"))
    return h * 3600 + m * 60 + s


def test_running_job_grows_eta_counts_down_and_stop_stops_it(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(database, settings, tmp_path, steps=400, pause=0.25)
    no_favicon(page)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/jobs/{job_id}")
    page.wait_for_function("() => document.getElementById('job-status').textContent === 'running'")
    page.wait_for_selector("#charts .chart[data-metric=loss]")
    first = int(page.get_attribute("#charts .chart[data-metric=loss]", "data-points") or 0)
    page.wait_for_function(
        f"() => Number(document.querySelector('#charts .chart[data-metric=loss]')"
        f".getAttribute('data-points')) > {first + 3}"
    )
    lines = page.locator("#log .ll").count()
    page.wait_for_function(f"() => document.querySelectorAll('#log .ll').length > {lines + 5}")
    # ANSI colours became classes; the HTML in the output stayed text
    page.click("a[data-tab=log]")
    assert page.locator("#log .ansi-bold.ansi-fg-2").first.text_content() == "starting"
    assert page.locator("#log b").count() == 0
    assert "<b>not bold</b>" in (page.locator("#log .ll").first.text_content() or "")
    # the ETA counts down between server updates
    page.wait_for_function(
        "() => /^\\d+:\\d\\d:\\d\\d$/.test(document.getElementById('job-eta').textContent)"
    )
    eta = seconds(page.text_content("#job-eta") or "")
    page.wait_for_function(
        "() => { const t = document.getElementById('job-eta').textContent.split(':').map(Number);"
        f" return t.length === 3 && t[0] * 3600 + t[1] * 60 + t[2] < {eta}; }}"
    )
    page.click("#job-stop")
    page.wait_for_function("() => document.getElementById('job-status').textContent === 'stopped'")
    page.wait_for_function("() => document.body.getAttribute('data-stream') === 'ended'")
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None and job.status == "stopped" and job.reason == "stopped by user"
    log = (service.job_dir(settings, job_id) / "job.log").read_text()
    assert "got SIGTERM" in log and "finished" not in log
    assert page.locator("#log .ll", has_text="got SIGTERM").count() == 1


def test_two_tabs_both_receive_every_log_line(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(database, settings, tmp_path, steps=60, pause=0.05)
    no_favicon(page)
    login(page, live_server, "ana", PASSWORD)
    other = page.context.new_page()
    for tab in (page, other):
        tab.goto(f"{live_server}/jobs/{job_id}#log")
    for tab in (page, other):
        tab.wait_for_function(
            "() => document.body.getAttribute('data-stream') === 'ended'", timeout=60_000
        )
    expected = [
        line.split(" ", 1)[1]
        for line in (service.job_dir(settings, job_id) / "job.log").read_text().splitlines()
    ]
    assert expected[-1] == "finished" and len(expected) == 2 + 3 * 60
    for tab in (page, other):
        shown = tab.eval_on_selector_all(
            "#log .ll", "els => els.map(e => e.lastElementChild.textContent)"
        )
        assert shown == [line.replace("\x1b[1;32m", "").replace("\x1b[0m", "") for line in expected]
    other.close()


def test_sweep_page_smoothing_and_legend_linked_to_table(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    from tests.factories import make_sweep_row

    no_favicon(page)
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    runs = [
        {"points": {"Validation_loss": [(x, (1 + x % 3) / (x + k)) for x in range(1, 40)]}}
        for k in (1, 2, 3)
    ]
    sweep_id, jobs = make_sweep_row(database, settings, ana.default_project_id, runs)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/sweeps/{sweep_id}")
    page.wait_for_selector("#sweep-chart canvas")
    best = page.locator("#sweep-table tr.best")
    assert best.get_attribute("data-job") == str(jobs[2]) and best.locator(".best-badge").count()
    page.locator("#sweep-smooth").fill("0.8")
    page.wait_for_selector("#sweep-chart canvas")
    assert page.locator("#sweep-smooth-value").text_content() == "0.8"
    page.locator(f'#sweep-table tr[data-job="{jobs[0]}"] td').nth(2).click()
    assert page.locator("#sweep-table tr.pinned").get_attribute("data-job") == str(jobs[0])
    page.mouse.move(0, 0)  # leaving the table keeps the pinned job highlighted
    assert page.locator("#sweep-table tr.focus").get_attribute("data-job") == str(jobs[0])
    assert errors == []


def test_live_log_lines_render_exactly_like_the_server_tail(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(database, settings, tmp_path, steps=1, pause=0, script=WAITING_SCRIPT)
    no_favicon(page)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/jobs/{job_id}#log")
    page.wait_for_function("() => document.getElementById('job-status').textContent === 'running'")
    page.wait_for_function("() => document.querySelectorAll('#log .ll').length >= 1")
    shown_at_load = page.locator("#log .ll").count()
    (service.job_dir(settings, job_id) / "output" / "go").touch()
    page.wait_for_function("() => document.body.getAttribute('data-stream') === 'ended'")
    live = page.inner_html("#log")
    assert page.locator("#log .ll").count() >= shown_at_load + 3  # these came over the stream
    assert page.locator("#log .ansi-fg-1.ansi-bold").first.text_content() == "red <i>x</i>"
    assert page.locator("#log i").count() == 0
    fresh = page.context.new_page()
    fresh.goto(f"{live_server}/jobs/{job_id}#log")
    assert fresh.inner_html("#log").strip() == live.strip()  # one renderer: the server's
    fresh.close()
