"""Every page fits its window: logged in as the admin, after a two-job sweep (with metrics)
and a search of the same lab, beside the `digits` dataset and a TensorBoard, each full page
the app serves is opened at 1280×800 and 1920×1080; the document is never wider than the
viewport and the console stays clean. With LABYARD_SCREENSHOTS set, a full-page screenshot
of each lands in that folder.

The pages come from the app's own routes (every GET route whose answer is a Labyard page),
so a new page is walked without editing this file; path ids come from the objects made here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets.models import Dataset
from labyard.datasets.service import dataset_dir
from labyard.db import Database, utcnow
from labyard.jobs import service as jobs_service
from labyard.jobs.metrics import Point, store_points
from labyard.jobs.models import Job
from labyard.labs import service as labs_service
from labyard.labs.search_submit import start_search
from labyard.tensorboard import service as tb_service
from labyard.weights.models import Weights
from labyard.weights.service import weights_dir
from tests.e2e.conftest import login
from tests.factories import ADMIN_PASSWORD, write_scalars

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = ((1280, 800), (1920, 1080))
# TensorBoard's and JupyterLab's own pages, proxied: not Labyard's layout
NOT_OURS = ("labyard.tensorboard.proxy", "labyard.sessions.proxy")
# a route's required query parameters, from the objects the test made
QUERIES = {"/datasets/{dataset_id}/preview": "?path={preview}"}
CURVES = ("Train_loss", "Train_acc", "Validation_loss", "Validation_acc", "lr")


@dataclass
class World:
    """The objects whose ids fill the routes' path parameters."""

    project_id: int
    lab_id: int
    sweep_id: int
    job_id: int
    dataset_id: int
    instance_id: int
    preview: str
    search_id: int
    weights_id: int
    path: str = "metrics.txt"


def _metrics(database: Database, job_ids: list[int]) -> None:
    """Ten epochs of the classification template's curves, plus the final Test points, stored
    the way ingestion does (the sweep's metric columns and panels read its series summaries)."""
    now = utcnow()
    with database.session() as db:
        for n, job_id in enumerate(job_ids, start=1):
            curves = [
                (Point(name, "epoch", x, (k + 1) / (x + n)), now)
                for k, name in enumerate(CURVES)
                for x in range(1, 11)
            ]
            tests = [(Point(name, "epoch", 10, 0.5), now) for name in ("Test_loss", "Test_acc")]
            store_points(db, job_id, curves + tests)


@pytest.fixture
def world(database: Database, settings: Settings) -> Iterator[World]:
    """A classification lab, its two-job sweep, the digits dataset and a TensorBoard."""
    with database.session() as db:
        admin = db.scalars(select(User).where(User.username == "admin")).one()
        project_id = admin.default_project_id
        assert project_id is not None
        lab = labs_service.create_lab(
            db, settings, admin, project_id=project_id, name="widths", template="classification"
        )
        lab_id = lab.id
        sweep = jobs_service.create_sweep(
            db,
            admin,
            settings=settings,
            project_id=project_id,
            lab_dir=labs_service.lab_dir(settings, lab_id),
            lab_id=lab_id,
            flavor="cpu",
            grid={"network": ["lenet", "resnet18"], "aug_list": ["color_distortion"]},
        )
        sweep_id = sweep.id
        job_ids = list(db.scalars(select(Job.id).where(Job.sweep_id == sweep_id)))
        digits = db.scalars(select(Dataset).where(Dataset.name == "digits")).one()
        digits_id, digits_dir = digits.id, dataset_dir(settings, digits)
    assert len(job_ids) == 2
    with database.sessionmaker() as db:  # start_search commits midway, as a request does
        admin = db.scalars(select(User).where(User.username == "admin")).one()
        search_id = start_search(db, settings, admin, lab_id, overrides={}, space={}).id
        db.commit()
    _metrics(database, job_ids)
    output = jobs_service.job_dir(settings, job_ids[0]) / "output"
    write_scalars(output / "tensorboard", "Train/loss")
    (output / "metrics.txt").write_text("loss 0.1\n")
    preview = min(p for p in digits_dir.rglob("*.png")).relative_to(digits_dir).as_posix()
    with database.session() as db:
        admin = db.scalars(select(User).where(User.username == "admin")).one()
        instance_id = tb_service.open_for_jobs(db, settings, admin, job_ids).id
    weights_id = _weights(database, settings, project_id, job_ids[0])
    try:
        yield World(
            project_id,
            lab_id,
            sweep_id,
            job_ids[0],
            digits_id,
            instance_id,
            preview,
            search_id,
            weights_id,
        )
    finally:
        with database.session() as db:
            tb_service.stop_children(db)


def _weights(database: Database, settings: Settings, project_id: int, job_id: int) -> int:
    """Weights fine-tuned from other weights (a lineage of two) with long names, as the
    registry stores them; the id of the later one."""
    parent: int | None = None
    with database.session() as db:
        for n in (1, 2):
            row = Weights(
                name=f"digits-resnet18-color-distortion-fine-tuned-{n}",
                project_id=project_id,
                framework="pytorch",
                format="pytorch",
                task="classification",
                classes=[str(c) for c in range(10)],
                input_shape=[3, 32, 32],
                metrics={"Validation_acc": 0.91, "Test_acc": 0.9},
                file_name="model.pt",
                files=["model.pt"],
                size_bytes=4,
                source_job_id=job_id,
                parent_id=parent,
            )
            db.add(row)
            db.flush()
            parent = row.id
            folder = weights_dir(settings, row)
            folder.mkdir(parents=True)
            (folder / "model.pt").write_bytes(b"\x80\x04N.")
    assert parent is not None
    return parent


def page_routes(app: FastAPI) -> list[str]:
    """Every GET route outside the API and the proxied TensorBoard, as a path template."""
    found = []
    for route in fastapi.routing.iter_route_contexts(app.routes):
        methods = getattr(route, "methods", None) or set()
        path = route.path_format or ""
        if "GET" not in methods or path.startswith(("/api/", "/static")):
            continue
        if route.endpoint.__module__ in NOT_OURS:
            continue
        found.append(path)
    return found


def fill(path: str, world: World) -> str:
    """The route with its ids (and required query) filled in; unknown ids fail loudly."""
    values = vars(world)
    names = re.findall(r"{(\w+)}", path)
    missing = [n for n in names if n not in values]
    assert not missing, f"{path}: the test makes no object for {missing}; add one to World"
    return (path + QUERIES.get(path, "")).format(**values)


def is_page(base_url: str, url: str, cookies: dict[str, str]) -> bool:
    """Whether the URL answers a whole Labyard page (not a fragment, a file or a stream)."""
    with httpx.stream("GET", base_url + url, cookies=cookies, follow_redirects=True) as answer:
        if not answer.headers.get("content-type", "").startswith("text/html"):
            return False  # a download or an event stream: not read
        body = answer.read().decode(errors="replace")
    return answer.status_code == 200 and "/static/css/labyard.css" in body


def settle(page: Any) -> None:
    """Wait until the page stops changing width (charts and htmx fragments have drawn)."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        """() => new Promise((done) => {
          let last = -1, same = 0;
          const tick = () => {
            const w = document.documentElement.scrollWidth;
            same = w === last ? same + 1 : 0;
            last = w;
            if (same >= 10) done(true); else requestAnimationFrame(tick);
          };
          tick();
        })"""
    )


MEASURE = """() => {
  const spills = [...document.querySelectorAll(".card")]
    .filter((card) => card.scrollWidth > card.clientWidth + 1)
    .map((card) => card.className + " " + card.scrollWidth + ">" + card.clientWidth);
  const root = document.documentElement;
  return [root.scrollWidth, root.clientWidth, spills];
}"""


def measure(
    page: Any, name: str, size: tuple[int, int], shots: Path | None
) -> tuple[int, int, list[str]]:
    """(document width, viewport width, cards whose content spills out) once the page
    settled; a screenshot if asked."""
    settle(page)
    if shots is not None:
        page.screenshot(path=str(shots / f"{size[0]}x{size[1]}-{name}.png"), full_page=True)
    return page.evaluate(MEASURE)


def assert_job_column_sticks(page: Any, table: str) -> None:
    """Scrolled to its right end, a wide table still shows its job column at the left."""
    wrapper = page.locator(f"{table} >> xpath=ancestor::div[contains(@class,'table-scroll')]")
    wide = wrapper.evaluate("(el) => (el.scrollLeft = el.scrollWidth, el.scrollLeft)")
    assert wide > 0, f"{table} fits without scrolling: nothing to prove"
    box = wrapper.bounding_box()
    cell = page.locator(f"{table} tbody tr td.sticky.edge").first.bounding_box()
    assert box is not None and cell is not None
    assert box["x"] <= cell["x"] < box["x"] + 80, (box, cell)
    name = page.locator(f"{table} tbody tr td.sticky.edge .trunc").first
    text, title = name.text_content() or "", name.get_attribute("title") or ""
    # the full name (the sweep table shows the label within the sweep) and all params on hover
    assert text and text in title.splitlines()[0] and len(title) > len(text)


def slug(url: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", url).strip("-") or "home"


def test_every_page_fits_its_window(
    live_server: str, page: Any, app: FastAPI, world: World
) -> None:
    shots_env = os.environ.get("LABYARD_SCREENSHOTS")
    shots = Path(shots_env) if shots_env else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_server, "admin", ADMIN_PASSWORD)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    urls = [fill(path, world) for path in page_routes(app)]
    pages = [url for url in urls if is_page(live_server, url, cookies)]
    assert {f"/sweeps/{world.sweep_id}", "/jobs", f"/labs/{world.lab_id}/files"} <= set(pages)
    assert f"/searches/{world.search_id}" in pages
    assert {"/weights", f"/weights/{world.weights_id}"} <= set(pages)
    pages.append(f"/labs/{world.lab_id}/files?file=README.md")
    pages.append(f"/datasets/{world.dataset_id}?path={world.preview.rpartition('/')[0]}")

    too_wide, widths = [], []
    for size in VIEWPORTS:
        page.set_viewport_size({"width": size[0], "height": size[1]})
        for url in pages:
            page.goto(live_server + url)
            doc, view, spills = measure(page, slug(url), size, shots)
            widths.append(f"{size[0]} {url}: {doc}")
            if doc > view or spills:
                too_wide.append(f"{url} at {size[0]}: {doc} px {spills}")
            assert not errors, f"console errors on {url}: {errors}"
        # the submit review: a table of the combinations under the parameter form
        page.goto(f"{live_server}/labs/{world.lab_id}/parameters")
        page.wait_for_load_state()
        for network in ("resnet18", "vgg16"):  # lenet is chosen already
            page.click(f"[data-chips=network] button.chip[data-chip-toggle={network}]")
        page.click("button:has-text('Submit Job')")
        page.wait_for_selector("#review table")
        doc, view, spills = measure(page, "lab-parameters-review", size, shots)
        widths.append(f"{size[0]} review: {doc}")
        if doc > view or spills:
            too_wide.append(f"submit review at {size[0]}: {doc} px {spills}")
        # the same form in search mode: the search settings and lr's range
        page.check("input[name=mode][value=search]")
        page.wait_for_selector("input[name='range.lr.min']", state="visible")
        doc, view, spills = measure(page, "lab-parameters-search", size, shots)
        widths.append(f"{size[0]} search form: {doc}")
        if doc > view or spills:
            too_wide.append(f"search form at {size[0]}: {doc} px {spills}")
    page.set_viewport_size({"width": 1280, "height": 800})
    for url, table in ((f"/sweeps/{world.sweep_id}", "#sweep-table"), ("/jobs", "table.jobs")):
        page.goto(live_server + url)
        assert_job_column_sticks(page, table)
    print("\n".join(widths))
    assert not too_wide, f"pages wider than the window: {too_wide}"
    assert not errors, errors


def test_chosen_columns_are_remembered_per_lab(live_server: str, page: Any, world: World) -> None:
    login(page, live_server, "admin", ADMIN_PASSWORD)
    sweep = f"{live_server}/sweeps/{world.sweep_id}"
    page.goto(sweep)
    lr = page.locator("#sweep-table th.param", has_text="lr_schedule")
    assert lr.is_visible()
    page.click(".columns-picker summary")
    page.uncheck(".columns-menu input[value='param:lr_schedule']")
    page.uncheck(".columns-menu input[value='metric:Train_acc']")
    assert lr.is_hidden()
    assert page.locator("#sweep-table th.metric:has-text('Train_acc')").count() == 2
    assert page.locator("#sweep-table th.metric:visible:has-text('Train_acc')").count() == 0
    page.reload()  # remembered: the same lab's sweep and its filtered jobs list hide them
    page.wait_for_selector("#sweep-table[data-columns-ready]")
    assert lr.is_hidden()
    cells = page.locator("#sweep-table tbody tr").first.locator("td:visible").count()
    headers = page.locator("#sweep-table thead th:visible").count()
    assert cells == headers  # rows hide the same columns as the header
    page.goto(f"{live_server}/projects/{world.project_id}/jobs?lab_id={world.lab_id}")
    page.wait_for_selector("table.jobs[data-columns-ready]")
    assert page.locator("table.jobs th.param", has_text="lr_schedule").is_hidden()
    page.goto(f"{live_server}/jobs")  # another scope: everything shown
    page.wait_for_selector("table.jobs[data-columns-ready]")
    assert page.locator("table.jobs th.param", has_text="lr_schedule").is_visible()
