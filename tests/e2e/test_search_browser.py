"""Browser tests of the search page on real searches (the fake training script, real jobs):
at 1280 and 1920 px it fits its window and draws its charts (best so far, every trial's curve
with the pruned ones dimmed and marked, parallel coordinates filtering the table, importances);
Stop, Resume and "Submit best" work and their failures show next to the control; a running
search's page refreshes itself and stops refreshing when the search ended."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.scheduler import Scheduler
from labyard.searches.driver import advance_searches
from labyard.searches.service import stop_search
from tests.e2e.conftest import login
from tests.e2e.test_job_pages_browser import no_favicon
from tests.e2e.test_page_widths_browser import measure
from tests.factories import PASSWORD, make_job_flavors, make_users_fast
from tests.integration.searches.conftest import run_search, start, write_search_lab

pytestmark = pytest.mark.browser

ROWS = "[...document.querySelectorAll('#search-trials tbody tr[data-trial]')]"
SHOWN = f"() => {ROWS}.filter(tr => !tr.hidden).map(tr => Number(tr.dataset.trial))"
# per curve: its label, its colour, and the x of the points its mark filter keeps
CURVES = """() => {
  const u = document.querySelector('#search-curves .chart').plot;
  return u.series.slice(1).map((s, i) => {
    const keep = s.points.filter(u, i + 1, false, null);
    return [s.label, s._stroke, keep ? keep.map(k => u.data[0][k]) : null];
  });
}"""


def scheduler(settings: Settings, database: Database) -> Scheduler:
    """A scheduler that advances searches (the test ticks it; the server's is off)."""
    return Scheduler(settings, database, steps=[advance_searches])


def ana(database: Database) -> User:
    make_job_flavors(database)
    return make_users_fast(database, "ana")["ana"]


def ended_search(
    database: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    """ana's search of 6 trials with ASHA, run to its end: one trial at a time, each epoch
    slow enough for the driver to judge it before the next, so the same trials are pruned
    every run."""
    monkeypatch.setenv("EPOCH_SECONDS", "0.15")
    lab = write_search_lab(tmp_path / "lab", epochs=4)
    overrides = {"trials": 6, "parallel": 1, "seed": 4, "early_stopping": "asha"}
    search_id = start(database, settings, ana(database), lab, overrides=overrides)
    run_search(scheduler(settings, database), database, search_id)
    return search_id


def open_search(page: Any, base: str, search_id: int) -> None:
    no_favicon(page)
    login(page, base, "ana", PASSWORD)
    page.goto(f"{base}/searches/{search_id}")


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_search_page_draws_its_charts_and_fits(
    live_server: str,
    page: Any,
    database: Database,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    search_id = ended_search(database, settings, tmp_path, monkeypatch)
    page.set_viewport_size({"width": width, "height": 900})
    open_search(page, live_server, search_id)
    page.wait_for_selector("#search-best-chart .chart canvas")
    page.wait_for_selector("#search-curves .chart canvas")
    page.wait_for_selector("#parcoords svg.pc")
    page.wait_for_selector("#search-importances .imp-row")
    trials = page.evaluate(f"() => {ROWS}.map(tr => Number(tr.dataset.trial))")
    assert trials == list(range(6))
    # best so far: one point per trial ended, never getting worse
    best = page.evaluate("() => document.querySelector('#search-best-chart .chart').plot.data")
    assert best[0] == [1, 2, 3, 4, 5, 6]
    values = [v for v in best[1] if v is not None]
    assert values and values == sorted(values)
    # every trial's curve; the pruned ones grey with a mark at the step they were pruned at
    pruned = page.get_attribute("#search-curves .chart", "data-pruned")
    assert pruned == "2,3,4"  # at their first rung (trial 0 failed, 1 and 5 completed)
    curves = page.evaluate(CURVES)
    with_values = page.evaluate(
        "() => JSON.parse(document.getElementById('search-live').dataset.boot).trials"
        ".filter(t => Object.keys(t.steps).length).length"
    )
    assert len(curves) == with_values >= 4  # a trial that failed at once printed nothing
    marked = [c for c in curves if c[2] is not None]
    assert len(marked) == len(pruned.split(","))
    for label, stroke, at in marked:
        assert "(pruned at " in label and stroke.startswith("rgba(134,142,150")
        assert at == [int(label.rsplit("pruned at ", 1)[1].rstrip(")"))]
    assert all(c[0].startswith("#") for c in curves)
    # hovering the curves names the nearest trial under the chart
    box = page.locator("#search-curves .chart .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.2)
    assert "· #" in (page.text_content("#search-curves .chart-readout") or "")
    # parallel coordinates: one line per trial; a brush on the value axis filters the table
    assert page.locator("#parcoords path[data-job]").count() == 6
    page.focus("#parcoords .pc-axis >> nth=-1")
    page.keyboard.press("ArrowUp")
    shown = page.evaluate(SHOWN)
    assert 0 < len(shown) < 6 and page.is_visible("#search-shown-line")
    page.keyboard.press("Escape")
    assert page.evaluate(SHOWN) == trials
    # importances: a bar per searched param, largest first
    names = page.eval_on_selector_all(
        "#search-importances .imp-row", "rs => rs.map(r => r.dataset.param)"
    )
    assert set(names) <= {"lr", "width"} and names
    # the page fits its window (measured last: a full-page screenshot resizes it)
    shots = os.environ.get("LABYARD_SCREENSHOTS")
    doc, view, spills = measure(page, "search", (width, 900), Path(shots) if shots else None)
    assert doc <= view and not spills, (doc, view, spills)
    # Submit best: a job with the best trial's params, its page opened
    page.click("#search-submit-best")
    page.wait_for_url(f"{live_server}/jobs/*")
    assert page.locator("#job-status").text_content() == "queued"


def settle(page: Any) -> None:
    """Run the paused page clock past htmx's settle delay (the page's scripts then redraw)."""
    page.clock.run_for(100)


@pytest.mark.refused_requests
def test_actions_work_and_failures_show_next_to_them(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    lab = write_search_lab(tmp_path / "lab", epochs=2)
    user = ana(database)
    search_id = start(database, settings, user, lab, overrides={"trials": 2})
    page.clock.install()  # the page's 10 s refresh runs only when the test runs the clock
    open_search(page, live_server, search_id)
    page.wait_for_selector("#search-live[data-state=running]")
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)
    assert page.text_content("#search-best-chart") == "No trial has completed yet."
    assert page.get_attribute("#search-live", "hx-trigger") == "every 10s"
    # Submit best before any trial completed: the reason, next to the button
    page.click("#search-submit-best")
    error = page.locator("#search-submit-best + .inline-error")
    error.wait_for()
    assert error.text_content() == "No trial has completed yet; there is no best trial to submit."
    # Resume past the limit: the reason, next to the number
    page.fill("#search-resume input[name=trials]", "1000")
    page.click("#search-resume button[type=submit]")
    field = page.locator("#search-resume label + .field-error")
    field.wait_for()
    assert field.text_content() == "A search runs at most 1000 trials in all; this one has 2."
    # Stop (confirmed): stopped at once (no trial ran), Stop disabled, no refresh any more
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#search-stop")
    page.wait_for_selector("#search-live[data-state=stopped]")
    settle(page)
    assert page.is_disabled("#search-stop")
    assert page.get_attribute("#search-live", "hx-trigger") is None
    assert page.text_content("#search-state") == "stopped"
    # Resume with 2 more: running again, refreshed, and Stop is back
    page.fill("#search-resume input[name=trials]", "2")
    page.click("#search-resume button[type=submit]")
    page.wait_for_selector("#search-live[data-state=running]")
    settle(page)
    assert page.is_enabled("#search-stop") and field.count() == 0
    # someone else stops it meanwhile: this page's Stop says why it cannot, next to it
    with database.session() as db:
        stop_search(db, db.get(User, user.id), search_id)  # type: ignore[arg-type]
    page.click("#search-stop")
    stop_error = page.locator("#search-stop + .inline-error")
    stop_error.wait_for()
    assert stop_error.text_content() == "The search is already stopped."
    # the page still shows `running` (it was stopped behind its back): wait for Resume's
    # answer itself, or the trials below could run before the search is resumed
    with page.expect_response(lambda r: r.request.method == "POST" and r.ok):
        page.click("#search-resume button[type=submit]")
    page.wait_for_selector("#search-live[data-state=running]")
    settle(page)
    # the trials run; within its 10 s refresh the page shows them, and once the search
    # ended it refreshes no more
    run_search(scheduler(settings, database), database, search_id)
    page.clock.run_for(11_000)
    page.wait_for_selector("#search-live[data-state=finished]")
    settle(page)
    assert page.evaluate(f"() => {ROWS}.length") == 2
    page.wait_for_selector("#search-best-chart .chart canvas")
    page.wait_for_selector("#search-curves .chart canvas")
    assert page.get_attribute("#search-live", "hx-trigger") is None
    assert page.is_disabled("#search-stop")
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/searches/" in r.url else None)
    page.clock.run_for(30_000)
    page.wait_for_timeout(300)
    assert fetched == []
