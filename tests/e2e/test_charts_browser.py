"""Browser tests of the chart panels (static/js/charts.js) on the job and sweep pages: one
panel per metric name, a one-point series drawn as a marker, integer ticks on step axes, the
log-scale toggle, zoom reset, CSV and PNG downloads, the numbers table, and panels that
appear live (the final Test points) without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import service
from labyard.jobs.models import MetricPoint
from tests.e2e.conftest import login
from tests.e2e.test_job_pages_browser import no_favicon, submit
from tests.factories import PASSWORD, make_job_row, make_sweep_row, make_users_fast

pytestmark = pytest.mark.browser

PANELS = (
    "() => [...document.querySelectorAll('#charts .chart')]"
    ".map(c => [c.dataset.metric, c.dataset.series])"
)

# The canvas colour at the centre of the one point of `name` in the panel `metric`.
MARKER_PIXEL = """([metric, name]) => {
  const wrap = document.querySelector(`#charts .chart[data-metric="${metric}"]`), u = wrap.plot;
  const k = u.series.findIndex(s => s.label === name), i = u.data[k].findIndex(v => v != null);
  const x = Math.round(u.valToPos(u.data[0][i], 'x', true));
  const y = Math.round(u.valToPos(u.data[k][i], 'y', true));
  const px = u.ctx.getImageData(x, y, 1, 1).data;
  const show = u.series[k].points.show;
  return {show: typeof show === 'function' ? show(u, k) : show,
          stroke: u.series[k].stroke(u, k), rgb: [px[0], px[1], px[2]]};
}"""


def hex_rgb(color: str) -> list[int]:
    """'#2b8a3e' -> [43, 138, 62]."""
    return [int(color[i : i + 2], 16) for i in (1, 3, 5)]


def assert_marker_drawn(page: Any, metric: str, name: str) -> None:
    """The series has markers on, and its one point's pixel is in the series' colour."""
    drawn = page.evaluate(MARKER_PIXEL, [metric, name])
    assert drawn["show"] is True
    expected = hex_rgb(drawn["stroke"])
    assert all(abs(a - b) <= 40 for a, b in zip(drawn["rgb"], expected, strict=True)), drawn


def integer_ticks(page: Any, selector: str) -> list[float]:
    """The x-axis tick values uPlot drew in the panel."""
    return list(page.evaluate(f"() => document.querySelector('{selector}').plot.axes[0]._splits"))


def test_job_page_one_panel_per_metric_markers_log_and_csv(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    no_favicon(page)
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    points = {
        "Train_loss": [(1, 0.9), (2, 0.5), (3, 0.3)],
        "Validation_loss": [(1, 250.0), (3, 120.0)],
        "Train_acc": [(1, 0.2), (2, 0.6), (3, 0.8)],
        "Validation_acc": [(3, 0.5)],
        "Test_acc": [(3, 0.91)],
        "Train_lr": [(1, 0.1), (2, 0.1), (3, 0.01)],
    }
    job_id = make_job_row(database, settings, ana.default_project_id, points=points)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/jobs/{job_id}")
    page.wait_for_selector("#charts .chart canvas")
    # loss and accuracy never share a y-axis: one panel per metric name, groups overlaid
    assert page.evaluate(PANELS) == [
        ["loss", "Train_loss,Validation_loss"],
        ["acc", "Train_acc,Validation_acc,Test_acc"],
        ["lr", "Train_lr"],
    ]
    assert page.evaluate(
        "() => [...document.querySelectorAll('#charts .chart')].map(c => c.plot.axes[1].label)"
    ) == ["loss", "acc", "lr"]
    # the one-point Test series is drawn: a marker in its colour where its value is
    assert_marker_drawn(page, "acc", "Test_acc")
    # steps 1..3 on a wide axis: whole-number ticks only (no 1.5)
    ticks = integer_ticks(page, "#charts .chart[data-metric=acc]")
    assert ticks and all(float(t).is_integer() for t in ticks)
    # the log toggle rebuilds the loss panel on a log y scale, and back
    loss = "#charts .chart[data-metric=loss]"
    page.check(f"{loss} .chart-log")
    assert page.evaluate(f"() => document.querySelector('{loss}').plot.scales.y.distr") == 3
    page.uncheck(f"{loss} .chart-log")
    assert page.evaluate(f"() => document.querySelector('{loss}').plot.scales.y.distr") == 1
    # the numbers as a table: the latest value of each series
    page.click(f"{loss} .chart-numbers summary")
    row = page.locator(f"{loss} .chart-numbers tr[data-series=Validation_loss] td")
    assert row.all_text_contents() == ["3", "120", "120", "250", "2"]
    # CSV: the raw points of the panel, one row per x, read back from the database
    with page.expect_download() as info:
        page.click("#charts .chart[data-metric=acc] .chart-csv")
    download = info.value
    assert download.suggested_filename == f"job{job_id}-acc.csv"
    lines = Path(download.path()).read_text().splitlines()
    with database.session() as db:
        stored = {
            (n, x): v
            for n, x, v in db.execute(
                select(MetricPoint.name, MetricPoint.x, MetricPoint.value).where(
                    MetricPoint.job_id == job_id
                )
            )
        }
    names = ["Train_acc", "Validation_acc", "Test_acc"]
    assert lines[0] == "step," + ",".join(names)
    xs = sorted({x for n, x in stored if n in names})
    assert [[float(c) if c else None for c in line.split(",")] for line in lines[1:]] == [
        [x] + [stored.get((n, x)) for n in names] for x in xs
    ]
    # PNG: an image of the panel
    with page.expect_download() as info:
        page.click(f"{loss} .chart-png")
    assert Path(info.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zoom_and_reset(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    no_favicon(page)
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    points = {"Train_loss": [(x, 1 / x) for x in range(1, 101)]}
    job_id = make_job_row(database, settings, ana.default_project_id, points=points)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/jobs/{job_id}")
    panel = "#charts .chart[data-metric=loss]"
    page.wait_for_selector(f"{panel} canvas")
    assert page.is_disabled(f"{panel} .chart-reset")
    box = page.locator(f"{panel} .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 20, steps=5)
    page.mouse.up()
    scale = (
        f"() => {{ const s = document.querySelector('{panel}').plot.scales.x;"
        " return [s.min, s.max]; }"
    )
    low, high = page.evaluate(scale)
    assert 1 < low < high < 100
    page.click(f"{panel} .chart-reset")
    assert page.evaluate(scale) == [1, 100]
    assert page.is_disabled(f"{panel} .chart-reset")


def test_sweep_chart_integer_ticks_axis_label_log_and_csv(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    no_favicon(page)
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    runs = [
        {"points": {"Validation_loss": [(1, 1.0 / k), (2, 0.5 / k), (3, 0.2 / k)]}} for k in (1, 2)
    ]
    sweep_id, jobs = make_sweep_row(database, settings, ana.default_project_id, runs)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/sweeps/{sweep_id}")
    chart = "#sweep-chart .chart"
    page.wait_for_selector(f"{chart} canvas")
    assert page.evaluate(f"() => document.querySelector('{chart}').plot.axes[0].label") == "step"
    ticks = integer_ticks(page, chart)
    assert ticks and all(float(t).is_integer() for t in ticks)
    page.check(f"{chart} .chart-log")
    assert page.evaluate(f"() => document.querySelector('{chart}').plot.scales.y.distr") == 3
    with page.expect_download() as info:
        page.click(f"{chart} .chart-csv")
    lines = Path(info.value.path()).read_text().splitlines()
    assert lines == [
        f"step,job {jobs[0]},job {jobs[1]}",
        "1,1,0.5",
        "2,0.5,0.25",
        "3,0.2,0.1",
    ]


LIVE_SCRIPT = """\
import os, time
print("waiting", flush=True)
while not os.path.exists(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "go")):
    time.sleep(0.05)
for step in range(1, 11):
    print(f"Train step={step} loss={1.0 / step:.4f}", flush=True)
    time.sleep(0.02)
print("Validation step=10 loss=250 acc=0.5", flush=True)
while not os.path.exists(os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], "test")):
    time.sleep(0.05)
print("Test step=10 acc=0.91", flush=True)
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The scheduler runs in the server (the live test's job runs)."""
    return settings.model_copy(update={"start_scheduler": True, "scheduler_interval_seconds": 0.2})


@pytest.mark.slow
def test_panels_and_the_final_test_point_appear_live(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    job_id = submit(database, settings, tmp_path, steps=1, pause=0, script=LIVE_SCRIPT)
    no_favicon(page)
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/jobs/{job_id}")
    page.wait_for_function("() => document.getElementById('job-status').textContent === 'running'")
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    assert page.evaluate(PANELS) == []
    output = service.job_dir(settings, job_id) / "output"
    (output / "go").touch()
    page.wait_for_function(
        "() => document.querySelector('#charts .chart[data-metric=acc]')"
        " && document.querySelector('#charts .chart[data-metric=loss]')"
        ".dataset.series === 'Train_loss,Validation_loss'"
    )
    assert page.evaluate(PANELS) == [
        ["loss", "Train_loss,Validation_loss"],
        ["acc", "Validation_acc"],
    ]
    (output / "test").touch()
    page.wait_for_function("() => document.body.getAttribute('data-stream') === 'ended'")
    page.wait_for_function(
        "() => document.querySelector('#charts .chart[data-metric=acc]')"
        ".dataset.series === 'Validation_acc,Test_acc'"
    )
    assert page.evaluate("() => window.sameDocument") is True
    assert_marker_drawn(page, "acc", "Test_acc")


def test_sweep_param_vs_metric_scatter(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    no_favicon(page)
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    runs = [(0.1, "resnet", 0.4), (0.01, "vgg", 0.2), (0.001, "resnet", 0.3)]
    sweep_id, jobs = make_sweep_row(
        database,
        settings,
        ana.default_project_id,
        [
            {
                "params": {"lr": lr, "net": net},
                "points": {"Validation_loss": [(1, loss * 2), (2, loss)]},
            }
            for lr, net, loss in runs
        ],
    )
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/sweeps/{sweep_id}")
    scatter = "#sweep-scatter .chart[data-kind=scatter]"
    page.wait_for_selector(f"{scatter} canvas")
    data = f"() => document.querySelector('{scatter}').plot.data.map(a => [...a])"
    # numbers: x is the param itself, one point per job, markers without lines
    assert page.evaluate(data) == [[0.001, 0.01, 0.1], [0.3, 0.2, 0.4]]
    assert page.get_attribute(scatter, "data-param") == "lr"
    # categories: sorted names on the axis, the CSV says the names
    page.select_option("#sweep-scatter-param", "net")
    scatter = "#sweep-scatter .chart[data-param=net]"
    page.wait_for_selector(f"{scatter} canvas")
    data = f"() => document.querySelector('{scatter}').plot.data.map(a => [...a])"
    assert page.evaluate(data) == [[0, 0, 1], [0.4, 0.3, 0.2]]
    with page.expect_download() as info:
        page.click(f"{scatter} .chart-csv")
    lines = Path(info.value.path()).read_text().splitlines()
    assert lines == ["net,Validation_loss", "resnet,0.4", "resnet,0.3", "vgg,0.2"]
    # clicking a point pins its job's row
    page.locator(f"{scatter} .u-over").scroll_into_view_if_needed()
    u = page.evaluate(
        f"() => {{ const u = document.querySelector('{scatter}').plot;"
        " const r = u.over.getBoundingClientRect();"
        " return [r.left + u.valToPos(1, 'x'), r.top + u.valToPos(0.2, 'y')]; }"
    )
    page.mouse.move(u[0], u[1])
    page.mouse.click(u[0], u[1])
    assert page.locator("#sweep-table tr.pinned").get_attribute("data-job") == str(jobs[1])
