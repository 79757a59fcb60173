"""Browser tests of the sweep page's comparison tools: parallel coordinates (one line per job,
brushes on axes filter the table, cleared by mouse and keyboard), ticked rows overlaying only
their curves, sort headers that are buttons with aria-sort, and the page fitting 1280 and
1920 px windows without console errors."""

from __future__ import annotations

from typing import Any

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import Job, JobStatus, Sweep
from tests.e2e.conftest import login
from tests.e2e.test_job_pages_browser import no_favicon
from tests.e2e.test_page_widths_browser import measure
from tests.factories import PASSWORD, add_points, make_job_row, make_sweep_row, make_users_fast

pytestmark = pytest.mark.browser

# lr spans four decades (a log axis: 0.1 top, 0.0001 bottom); net is a category axis
# (resnet above vgg, sorted); the loss is the metric.
RUNS = [(0.1, "resnet", 0.4), (0.01, "vgg", 0.2), (0.001, "resnet", 0.3), (0.0001, "vgg", 0.5)]
ROWS = "[...document.querySelectorAll('#sweep-table tbody tr[data-job]')]"
# the job ids of the table's rows in their order: all of them, the ones the brushes keep
ORDER = f"() => {ROWS}.map(tr => Number(tr.dataset.job))"
SHOWN = f"() => {ROWS}.filter(tr => !tr.hidden).map(tr => Number(tr.dataset.job))"
LINES = "() => [...document.querySelectorAll('#parcoords path[data-job]')].map(p => +p.dataset.job)"
AXES = "() => [...document.querySelectorAll('#parcoords .pc-axis')].map(a => a.dataset)"
AXES += ".map(d => [d.name, d.kind])"


def make_sweep(
    database: Database, settings: Settings, *, more: bool = False
) -> tuple[int, list[int]]:
    """ana's sweep of four jobs with Validation_loss curves (`more`: Train_loss and Train_acc
    too, over more steps); (sweep id, job ids)."""
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    runs = [
        {"params": {"lr": lr, "net": net}, "points": curves(loss, more)} for lr, net, loss in RUNS
    ]
    return make_sweep_row(database, settings, ana.default_project_id, runs)


def curves(loss: float, more: bool) -> dict[str, list[tuple[float, float]]]:
    """A job's metric points: Validation_loss; with `more`, also Train_loss and Train_acc."""
    points: dict[str, list[tuple[float, float]]] = {
        "Validation_loss": [(1, loss * 2), (2, loss * 1.5), (3, loss)]
    }
    if more:
        points["Train_loss"] = [(x, loss * 3 / x) for x in range(1, 31)]
        points["Train_acc"] = [(x, 1 - loss / x) for x in range(1, 31)]
    return points


def drag(page: Any, axis: int, top: float, bottom: float) -> None:
    """Drag with the mouse on an axis from fraction `top` to `bottom` of its height (1 top)."""
    page.locator("#parcoords").scroll_into_view_if_needed()
    line = page.locator(f'#parcoords .pc-axis[data-axis="{axis}"] > line').first.bounding_box()
    assert line is not None
    x = line["x"] + line["width"] / 2

    def y(f: float) -> float:
        return line["y"] + (1 - f) * line["height"]

    page.mouse.move(x, y(top))
    page.mouse.down()
    page.mouse.move(x, (y(top) + y(bottom)) / 2, steps=3)
    page.mouse.move(x, y(bottom), steps=3)
    page.mouse.up()


def open_sweep(page: Any, base: str, sweep_id: int) -> None:
    login(page, base, "ana", PASSWORD)
    page.goto(f"{base}/sweeps/{sweep_id}")
    page.wait_for_selector("#parcoords svg.pc")
    page.wait_for_selector("#sweep-chart .chart canvas")


METRICS = ["Validation_loss", "Train_acc", "Train_loss"]
# per panel: its metric, the jobs it draws (data-jobs), uPlot's series count, and the
# colour and width of each job's line
PANELS = """() => [...document.querySelectorAll('#sweep-chart .chart')].map(c => {
  const u = c.plot, lines = {};
  u.series.slice(1).forEach((s, k) => { lines[s.label] = [s._stroke, s.width]; });
  const jobs = c.dataset.jobs.split(',').map(Number).sort((a, b) => a - b);
  return {metric: c.dataset.metric, jobs: jobs, series: u.series.length - 1, lines: lines};
})"""
# per panel: the job whose line is in front (the others faded), or null when all alike
FOCUSED = """() => [...document.querySelectorAll('#sweep-chart .chart')].map(c => {
  const u = c.plot, faded = u.series.some(o => o.alpha < 1);
  const k = u.series.findIndex((s, i) => i && faded && s.alpha === 1);
  return k > 0 ? u.series[k].label : null;
})"""

# the page coordinates of the first point of a job's line in a metric's panel
POINT = """([metric, name]) => {
  const u = document.querySelector(`#sweep-chart .chart[data-metric="${metric}"]`).plot;
  const k = u.series.findIndex(s => s.label === name), r = u.over.getBoundingClientRect();
  return [r.left + u.valToPos(u.data[0][0], 'x'), r.top + u.valToPos(u.data[k][0], 'y')];
}"""


def show_panels(page: Any, jobs: list[int]) -> list[dict[str, Any]]:
    """Scroll each metric's panel into view (they load when seen) until it draws every job."""
    for metric in METRICS:
        page.locator(f'#sweep-chart [data-slot="{metric}"]').scroll_into_view_if_needed()
        drawn = f'#sweep-chart .chart[data-metric="{metric}"][data-jobs] canvas'
        page.wait_for_selector(drawn)
    return list(page.evaluate(PANELS))


def test_parallel_coordinates_brush_filters_the_table_and_clears(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    no_favicon(page)
    sweep_id, jobs = make_sweep(database, settings)
    open_sweep(page, live_server, sweep_id)
    # one line per job, one axis per param plus the metric's
    assert sorted(page.evaluate(LINES)) == jobs
    assert page.evaluate(AXES) == [
        ["param:lr", "log"],
        ["param:net", "category"],
        ["metric", "linear"],
    ]
    assert page.is_hidden("#sweep-shown-line")
    # brush lr's upper half: 0.1 and 0.01
    drag(page, 0, 1.05, 0.5)
    assert page.evaluate(SHOWN) == jobs[:2]
    assert page.text_content("#sweep-shown") == "2 of 4 jobs shown"
    assert page.locator("#parcoords path.out").count() == 2
    # a second brush combines: resnet only (the top category) -> the first job
    drag(page, 1, 1.05, 0.8)
    assert page.evaluate(SHOWN) == [jobs[0]]
    assert page.text_content("#sweep-shown") == "1 of 4 jobs shown"
    # the keyboard: Delete on a focused axis clears that axis, Escape clears all
    page.focus('#parcoords .pc-axis[data-axis="0"]')
    page.keyboard.press("Delete")
    assert page.evaluate(SHOWN) == [jobs[0], jobs[2]]
    page.keyboard.press("Escape")
    assert page.evaluate(SHOWN) == jobs
    assert page.is_hidden("#sweep-shown-line")
    assert page.locator("#parcoords path.out").count() == 0
    # a brush from the keyboard: an arrow starts one at the top fifth, Shift+Down grows it,
    # Down moves it
    page.focus('#parcoords .pc-axis[data-axis="0"]')
    page.keyboard.press("ArrowUp")
    assert page.evaluate(SHOWN) == [jobs[0]]
    for _ in range(3):
        page.keyboard.press("Shift+ArrowDown")
    assert page.evaluate(SHOWN) == jobs[:2]
    page.keyboard.press("ArrowDown")
    assert page.evaluate(SHOWN) == [jobs[1]]
    page.keyboard.press("Escape")
    # the Clear brushes button, pressed from the keyboard
    drag(page, 2, 0.4, -0.05)  # the lowest best losses, 0.2 and 0.3 (0.5 at the top)
    assert page.evaluate(SHOWN) == [jobs[1], jobs[2]]
    page.focus("#pc-clear")
    page.keyboard.press("Enter")
    assert page.evaluate(SHOWN) == jobs
    # the brushed rows stay filtered when the table is sorted
    drag(page, 0, 1.05, 0.5)
    page.click("#sweep-table th.param button.sort")
    assert sorted(page.evaluate(SHOWN)) == jobs[:2]


def test_selected_rows_overlay_their_curves_and_headers_are_buttons(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    no_favicon(page)
    sweep_id, jobs = make_sweep(database, settings)
    open_sweep(page, live_server, sweep_id)
    chart = "#sweep-chart .chart"
    curves = f"() => {{ const c = document.querySelector('{chart}');"
    curves += " return [c.dataset.jobs, c.plot.series.length - 1]; }"
    assert page.evaluate(curves) == [",".join(map(str, jobs)), 4]
    page.check(f'#sweep-table input[name=job_ids][value="{jobs[1]}"]')
    page.check(f'#sweep-table input[name=job_ids][value="{jobs[3]}"]')
    assert page.evaluate(curves) == [f"{jobs[1]},{jobs[3]}", 2]
    assert page.get_attribute(chart, "data-series") == f"job {jobs[1]},job {jobs[3]}"
    page.uncheck(f'#sweep-table input[name=job_ids][value="{jobs[1]}"]')
    page.uncheck(f'#sweep-table input[name=job_ids][value="{jobs[3]}"]')
    assert page.evaluate(curves) == [",".join(map(str, jobs)), 4]
    # hovering a row draws its job's line bold in the parallel coordinates
    page.hover(f'#sweep-table tr[data-job="{jobs[2]}"] td.param >> nth=0')
    assert page.get_attribute("#parcoords path.hot", "data-job") == str(jobs[2])
    # every sortable header is a button; the <th> says the order
    heads = page.locator("#sweep-table th[data-sort]")
    assert heads.count() == page.locator("#sweep-table th[data-sort] > button.sort").count() > 0
    lr = page.locator("#sweep-table th.param", has_text="lr")
    assert lr.get_attribute("aria-sort") == "none"
    lr.locator("button.sort").focus()
    page.keyboard.press("Enter")
    assert lr.get_attribute("aria-sort") == "ascending"
    assert page.evaluate(ORDER) == jobs[::-1]
    page.keyboard.press("Enter")
    assert lr.get_attribute("aria-sort") == "descending"
    assert page.evaluate(ORDER) == jobs


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_sweep_page_fits_its_window(
    live_server: str, page: Any, database: Database, settings: Settings, size: tuple[int, int]
) -> None:
    no_favicon(page)
    sweep_id, _ = make_sweep(database, settings)
    page.set_viewport_size({"width": size[0], "height": size[1]})
    open_sweep(page, live_server, sweep_id)
    drag(page, 0, 1.05, 0.5)
    width, viewport, spills = measure(page, f"sweep-compare-{size[0]}", size, None)
    assert width <= viewport and not spills, (width, viewport, spills)
    box = page.locator("#parcoords svg").bounding_box()
    assert box is not None and box["width"] <= size[0]


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
def test_one_panel_per_metric_with_every_job_in_a_two_column_grid(
    live_server: str, page: Any, database: Database, settings: Settings, size: tuple[int, int]
) -> None:
    no_favicon(page)
    sweep_id, jobs = make_sweep(database, settings, more=True)
    page.set_viewport_size({"width": size[0], "height": size[1]})
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/sweeps/{sweep_id}")
    names = "ns => ns.map(n => n.dataset.slot)"
    slots = page.eval_on_selector_all("#sweep-chart [data-slot]", names)
    assert sorted(slots) == sorted(METRICS)
    panels = show_panels(page, jobs)
    # three panels, never two metrics on one y-axis, each with every job's line
    assert sorted(p["metric"] for p in panels) == sorted(METRICS)
    assert all(p["jobs"] == sorted(jobs) and p["series"] == 4 for p in panels), panels
    # a job has the same colour in every panel, and jobs differ; the best job is bold
    for job in jobs:
        assert len({tuple(p["lines"][f"job {job}"]) for p in panels}) == 1, (job, panels)
    assert len({p["lines"][f"job {job}"][0] for job in jobs for p in panels[:1]}) == 4
    best = int(page.get_attribute("#sweep-chart", "data-best") or 0)
    assert best in jobs and all(p["lines"][f"job {best}"][1] == 3 for p in panels)
    # two columns: the first two panels side by side, the third below the first
    boxes = [page.locator("#sweep-chart .sweep-slot").nth(i).bounding_box() for i in range(3)]
    assert boxes[0] and boxes[1] and boxes[2]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"]
    assert boxes[2]["x"] == boxes[0]["x"] and boxes[2]["y"] > boxes[0]["y"] + 100
    width, viewport, spills = measure(page, f"sweep-panels-{size[0]}", size, None)
    assert width <= viewport and not spills, (width, viewport, spills)
    # hovering a row brings its job to the front in every panel; leaving the table, none
    page.hover(f'#sweep-table tr[data-job="{jobs[1]}"] td.param >> nth=0')
    assert page.evaluate(FOCUSED) == [f"job {jobs[1]}"] * 3
    page.mouse.move(0, 0)
    assert page.evaluate(FOCUSED) == [None] * 3
    # hovering a curve in one panel brings that job to the front in all three and marks its
    # row; a click pins it
    page.locator('#sweep-chart .chart[data-metric="Train_loss"]').scroll_into_view_if_needed()
    x, y = page.evaluate(POINT, ["Train_loss", f"job {jobs[3]}"])
    page.mouse.move(x - 3, y)
    page.mouse.move(x, y)
    assert page.evaluate(FOCUSED) == [f"job {jobs[3]}"] * 3
    assert page.get_attribute("#sweep-table tr.focus", "data-job") == str(jobs[3])
    page.mouse.click(x, y)
    assert page.get_attribute("#sweep-table tr.pinned", "data-job") == str(jobs[3])
    page.mouse.move(0, 0)
    assert page.evaluate(FOCUSED) == [f"job {jobs[3]}"] * 3
    # ticking two rows reduces every panel to their two lines
    page.check(f'#sweep-table input[name=job_ids][value="{jobs[0]}"]')
    page.check(f'#sweep-table input[name=job_ids][value="{jobs[2]}"]')
    ticked = page.evaluate(PANELS)
    assert [(p["jobs"], p["series"]) for p in ticked] == [([jobs[0], jobs[2]], 2)] * 3
    # smoothing redraws every panel and keeps the ticked rows
    page.locator("#sweep-smooth").fill("0.5")
    assert [p["jobs"] for p in page.evaluate(PANELS)] == [[jobs[0], jobs[2]]] * 3
    page.uncheck(f'#sweep-table input[name=job_ids][value="{jobs[0]}"]')
    page.uncheck(f'#sweep-table input[name=job_ids][value="{jobs[2]}"]')
    assert all(p["series"] == 4 for p in page.evaluate(PANELS))


def test_panels_say_when_they_have_nothing_to_draw(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    no_favicon(page)
    sweep_id, jobs = make_sweep(database, settings)
    with database.session() as db:
        sweep = db.get(Sweep, sweep_id)
        assert sweep is not None
        project_id = sweep.project_id
    quiet = make_job_row(database, settings, project_id, sweep_id=sweep_id)
    open_sweep(page, live_server, sweep_id)
    panel = '#sweep-chart [data-slot="Validation_loss"]'
    assert page.get_attribute(f"{panel} .chart", "data-jobs") == ",".join(map(str, jobs))
    page.check(f'#sweep-table input[name=job_ids][value="{quiet}"]')  # a job with no points
    assert page.locator(f"{panel} .chart").count() == 0
    assert page.text_content(panel) == "Validation_lossNo values for the selected jobs."
    page.uncheck(f'#sweep-table input[name=job_ids][value="{quiet}"]')
    assert page.get_attribute(f"{panel} .chart", "data-jobs") == ",".join(map(str, jobs))
    # a sweep without any metric yet: one line, no panel
    with database.session() as db:
        empty = Sweep(project_id=project_id, name="e", flavor="cpu", grid={})
        db.add(empty)
        db.flush()
        empty_id = empty.id
    make_job_row(database, settings, project_id, sweep_id=empty_id)
    page.goto(f"{live_server}/sweeps/{empty_id}")
    assert (page.text_content("#sweep-chart") or "").strip() == "No values yet."
    assert page.locator("#sweep-chart .sweep-slot").count() == 0


def test_a_running_sweep_fills_its_panels_and_statuses_live(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    """While a job runs, the panels fetch their curves again (every 10 s: the page clock is
    run forward), so new points and a finished status appear without a reload."""
    no_favicon(page)
    sweep_id, jobs = make_sweep(database, settings)
    with database.session() as db:
        running = db.get(Job, jobs[0])
        assert running is not None
        running.status = JobStatus.RUNNING
        running.finished_at = None
    page.clock.install()
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/sweeps/{sweep_id}")
    numbers = "#sweep-chart [data-metric=Validation_loss] .chart-numbers"
    page.wait_for_selector(numbers, state="attached")
    assert "0.0123" not in page.inner_text(numbers + " table")
    with database.session() as db:
        add_points(db, jobs[0], {"Validation_loss": [(4, 0.0123)]})
        finished = db.get(Job, jobs[0])
        assert finished is not None
        finished.status = JobStatus.SUCCEEDED
    page.clock.run_for(11_000)
    page.wait_for_function(
        "s => document.querySelector(s).textContent.includes('0.0123')", arg=numbers + " table"
    )
    badge = page.locator(f'#sweep-table tr[data-job="{jobs[0]}"] .badge')
    assert badge.inner_text() == "succeeded"
    # nothing is live any more: no further fetches of the curves
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/curves" in r.url else None)
    page.clock.run_for(30_000)
    page.wait_for_timeout(300)
    assert fetched == []
