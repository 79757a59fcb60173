"""The dataset page in a real browser: drop two files and a folder on the drop zone, see
per-file and batch progress bars, and the files appear in the browser without a reload."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from labyard.config import Settings
from labyard.db import Database
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_dataset, make_users_fast

pytestmark = pytest.mark.browser

DROP = """
([one, two, inner, deeper]) => {
  const zone = document.getElementById("dropzone");
  const asFile = (f) => new File([f.text], f.name, {type: "text/plain"});
  const fileEntry = (f) => ({isFile: true, isDirectory: false, name: f.name,
                             file: (ok) => ok(asFile(f))});
  const dirEntry = (name, children) => {
    let given = false;
    return {isFile: false, isDirectory: true, name,
            createReader: () => ({readEntries: (ok) => {
              const batch = given ? [] : children;
              given = true;
              setTimeout(() => ok(batch), 0);
            }})};
  };
  const folder = dirEntry("imgs", [fileEntry(inner), dirEntry("sub", [fileEntry(deeper)])]);
  const entries = [fileEntry(one), fileEntry(two), folder];
  const event = new Event("drop", {bubbles: true, cancelable: true});
  Object.defineProperty(event, "dataTransfer", {value: {
    items: entries.map((e) => ({webkitGetAsEntry: () => e})), files: []}});
  zone.dispatchEvent(event);
}
"""


def test_drop_two_files_and_a_folder(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    users = make_users_fast(database, "ana")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    dataset_id = make_dataset(database, settings, users["ana"], project_id, "drops")
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/datasets/{dataset_id}")
    files = [
        {"name": "one.txt", "text": "1" * 20_000},
        {"name": "two.txt", "text": "2" * 30_000},
        {"name": "inner.txt", "text": "i"},
        {"name": "deeper.txt", "text": "d"},
    ]
    page.evaluate(DROP, files)
    rows = page.locator("#upload-list tr.upload-row")
    rows.nth(3).wait_for()
    assert rows.count() == 4
    assert page.locator("#upload-list progress.file-progress").count() == 4
    assert page.locator("#batch-progress").is_visible()
    expect(page.locator("#batch-label")).to_have_text(re.compile(r"^Uploaded 4 of 4 files$"))
    values = page.eval_on_selector_all(
        "#upload-list progress, #batch-progress", "els => els.map(e => e.value)"
    )
    assert values == [1, 1, 1, 1, 1]
    table = page.locator("#file-table")
    for name in ("one.txt", "two.txt", "imgs/"):
        table.get_by_text(name, exact=True).wait_for()
    assert page.url == f"{live_server}/datasets/{dataset_id}"  # no reload, no navigation
    page.locator("#file-table").get_by_role("link", name="imgs/").click()
    page.wait_for_url(f"{live_server}/datasets/{dataset_id}?path=imgs")
    page.locator("#file-table").get_by_text("sub/", exact=True).wait_for()
    page.locator("#file-table").get_by_text("inner.txt", exact=True).wait_for()
