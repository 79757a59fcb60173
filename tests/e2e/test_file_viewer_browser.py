"""The file viewer in a real browser: a job's confusion matrix PNG opens inline from the files
tab, a lab's README.md (the classification template's) renders, a 32x32 dataset image is
scaled up pixelated; no console error and no page wider than the window."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from PIL import Image

from labyard.config import Settings
from labyard.datasets import service as dataset_service
from labyard.datasets.models import Dataset
from labyard.db import Database
from labyard.labs import service as lab_service
from labyard.labs.models import Lab
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_dataset, make_job_row, make_users_fast

pytestmark = [pytest.mark.browser]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), (255, 255, 255))
    for i in range(min(width, height)):
        image.putpixel((i, i), (20, 60, 200))
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _no_wider_than_window(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def test_confusion_matrix_and_lab_readme(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    from playwright.sync_api import expect

    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    long_line = b"x" * 5000 + b"\n"
    job_id = make_job_row(
        database,
        settings,
        ana.default_project_id,
        outputs={"confusion_matrix.png": _png(480, 480), "long.txt": long_line},
    )
    with database.session() as db:
        lab: Lab = lab_service.create_lab(
            db,
            settings,
            db.merge(ana),
            project_id=ana.default_project_id,
            name="readme",
            template="classification",
        )
        lab_id = lab.id
    login(page, live_server, "ana", PASSWORD)

    page.goto(f"{live_server}/jobs/{job_id}#files")
    page.click("#job-files >> text=confusion_matrix.png")
    image = page.locator("#job-file-view .viewer-image img")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#job-file-view img');"
        " return i && i.complete && i.naturalWidth === 480; }"
    )
    _no_wider_than_window(page)
    page.click("#job-files >> text=long.txt")  # one 5,000-character line wraps in its box
    expect(page.locator("#job-file-view td.code")).to_have_count(1)
    _no_wider_than_window(page)

    page.goto(f"{live_server}/labs/{lab_id}/files?file=README.md")
    markdown = page.locator(".viewer-markdown")
    expect(markdown.locator("h1").first).to_be_visible()
    assert "#" not in markdown.locator("h1").first.inner_text()
    _no_wider_than_window(page)
    page.goto(f"{live_server}/labs/{lab_id}/files")  # the folder's README shows on its own
    expect(page.locator(".viewer-markdown h1").first).to_be_visible()
    assert re.search(r"/labs/\d+/files$", page.url)


def test_small_dataset_image_scaled_up_pixelated(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    from playwright.sync_api import expect

    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    ana = make_users_fast(database, "ana")["ana"]
    assert ana.default_project_id is not None
    dataset_id = make_dataset(database, settings, ana, ana.default_project_id, "tiny")
    with database.session() as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        root = dataset_service.dataset_dir(settings, dataset)
    (root / "3.png").write_bytes(_png(32, 32))
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/datasets/{dataset_id}/preview?path=3.png")
    image = page.locator(".viewer-image img")
    expect(image).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('.viewer-image img');"
        " return i && i.complete && i.naturalWidth === 32; }"
    )
    shown = image.evaluate("i => [i.clientWidth, getComputedStyle(i).imageRendering]")
    assert shown == [384, "pixelated"]
    _no_wider_than_window(page)
