"""Uploads on the dataset page and the lab's Files tab in a real browser: drops built from a
real DataTransfer (files, and folders through webkitGetAsEntry), the keyboard's way in, and
the panels that follow an archive's extraction without a reload."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from labyard.config import Settings
from labyard.db import Database
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_dataset, make_users_fast

pytestmark = pytest.mark.browser

# A drop as Chromium makes it: a DataTransfer holding File objects, dragenter / dragover /
# drop dispatched on the zone. Items added by a script have no webkitGetAsEntry() entry.
REAL_DROP = """
([selector, files]) => {
  const zone = document.querySelector(selector);
  const data = new DataTransfer();
  for (const f of files) data.items.add(new File([f.text], f.name, {type: "text/plain"}));
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
  }
}
"""

# A dropped folder: the items' webkitGetAsEntry() gives a directory whose reader answers in
# batches of two, then an empty batch (as Chromium's does past 100 entries).
FOLDER_DROP = """
([tree]) => {
  const zone = document.getElementById("dropzone");
  const fileEntry = (name, text) => ({isFile: true, isDirectory: false, name,
    file: (ok) => ok(new File([text], name, {type: "text/plain"}))});
  const dirEntry = (name, children) => {
    let at = 0;
    return {isFile: false, isDirectory: true, name, createReader: () => ({
      readEntries: (ok) => {
        const batch = children.slice(at, at + 2);
        at += batch.length;
        setTimeout(() => ok(batch), 0);
      }})};
  };
  const build = (name, node) => typeof node === "string" ? fileEntry(name, node)
    : dirEntry(name, Object.entries(node).map(([k, v]) => build(k, v)));
  const top = Object.entries(tree).map(([k, v]) => build(k, v));
  const data = new DataTransfer();
  const event = new DragEvent("drop", {bubbles: true, cancelable: true});
  Object.defineProperty(event, "dataTransfer", {value: {
    items: top.map((entry) => ({kind: "file", webkitGetAsEntry: () => entry})),
    files: data.files}});
  zone.dispatchEvent(event);
}
"""


def _open_dataset(page: Any, live_server: str, database: Database, settings: Settings) -> int:
    users = make_users_fast(database, "ana")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    dataset_id = make_dataset(database, settings, users["ana"], project_id, "drops")
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/datasets/{dataset_id}")
    page.evaluate("() => { window.notReloaded = true; }")
    return dataset_id


def _names(page: Any, live_server: str, dataset_id: int, path: str = "") -> list[str]:
    """The entries of a folder, listed by the JSON API with the browser's session."""
    response = page.request.get(
        f"{live_server}/api/v1/datasets/{dataset_id}/files", params={"path": path}
    )
    assert response.ok
    return sorted(e["name"] for e in response.json())


def _batch_done(page: Any, count: int) -> None:
    label = page.locator("#batch-label")
    expect(label).to_have_text(re.compile(rf"^Uploaded {count} of {count} files$"))


def test_a_real_drop_uploads_its_files(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    dataset_id = _open_dataset(page, live_server, database, settings)
    files = [{"name": "one.txt", "text": "1" * 5000}, {"name": "two.txt", "text": "22"}]
    page.evaluate(REAL_DROP, ["#dropzone", files])
    _batch_done(page, 2)
    assert _names(page, live_server, dataset_id) == ["one.txt", "two.txt"]
    page.locator("#file-table").get_by_text("two.txt", exact=True).wait_for()
    assert page.evaluate("() => window.notReloaded") is True


def test_a_dropped_folder_keeps_its_relative_paths(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    dataset_id = _open_dataset(page, live_server, database, settings)
    tree = {"photos": {"a.txt": "a", "b.txt": "b", "c.txt": "c", "sub": {"d.txt": "d"}}}
    page.evaluate(FOLDER_DROP, [tree])
    _batch_done(page, 4)
    assert _names(page, live_server, dataset_id) == ["photos"]
    assert _names(page, live_server, dataset_id, "photos") == ["a.txt", "b.txt", "c.txt", "sub"]
    assert _names(page, live_server, dataset_id, "photos/sub") == ["d.txt"]
    rows = page.locator("#upload-list td:first-child").all_inner_texts()
    assert sorted(rows) == ["photos/a.txt", "photos/b.txt", "photos/c.txt", "photos/sub/d.txt"]


def _tab_to(page: Any, element_id: str, presses: int = 60) -> None:
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} was not reached by Tab")


def test_keyboard_upload(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    dataset_id = _open_dataset(page, live_server, database, settings)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("1")
    second.write_text("2")
    # Enter on the focused zone opens the picker. The chooser is awaited from before the
    # first Tab: Playwright intercepts file choosers only once its request to do so has landed.
    with page.expect_file_chooser() as chooser:
        _tab_to(page, "dropzone")
        page.keyboard.press("Enter")
    chooser.value.set_files(str(first))
    _batch_done(page, 1)
    _tab_to(page, "file-picker")
    label = page.locator("label.picker", has=page.locator("#file-picker"))
    assert label.evaluate("l => getComputedStyle(l).outlineStyle") == "solid"  # focus ring
    page.locator("#file-picker").set_input_files(str(second))
    _batch_done(page, 2)
    assert _names(page, live_server, dataset_id) == ["first.txt", "second.txt"]


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), 128).save(out, "PNG")
    return out.getvalue()


def _classification_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for split in ("train", "test"):
            for label in ("cat", "dog"):
                archive.writestr(f"{split}/{label}/1.png", _png())
    return out.getvalue()


def test_extraction_refreshes_the_panels_and_reports_its_result(
    live_server: str, page: Any, database: Database, settings: Settings, tmp_path: Path
) -> None:
    dataset_id = _open_dataset(page, live_server, database, settings)
    insight = page.locator("#insight")
    expect(insight).to_contain_text("Format not recognised")
    good, broken = tmp_path / "pets.zip", tmp_path / "broken.zip"
    good.write_bytes(_classification_zip())
    broken.write_bytes(_classification_zip()[:100])  # truncated: no end record
    page.check("#extract-after")
    page.locator("#file-picker").set_input_files([str(good), str(broken)])
    rows = page.locator("#upload-list tr.upload-row")
    good_row = rows.filter(has_text="pets.zip")
    expect(good_row.locator("td").last).to_have_text("extracted 4 entries", timeout=30_000)
    expect(insight).to_contain_text("Classification format: 2 classes.")
    browser = page.locator("#file-table")
    browser.get_by_text("train/", exact=True).wait_for()
    browser.get_by_text("test/", exact=True).wait_for()
    broken_row = rows.filter(has_text="broken.zip")
    expect(broken_row.locator("td").last).to_have_text(
        "extraction failed: Cannot read the archive: it is not a zip file (no end record)."
    )
    expect(broken_row).to_have_class(re.compile(r"\bfailed\b"))
    status = page.locator("#tasks tr[data-task-status=failed]")
    expect(status).to_contain_text("broken.zip")
    assert page.evaluate("() => window.notReloaded") is True
    assert _names(page, live_server, dataset_id) == ["broken.zip", "pets.zip", "test", "train"]


def test_lab_files_tab_takes_a_real_drop(
    live_server: str, page: Any, database: Database, settings: Settings
) -> None:
    from labyard.auth.models import User
    from labyard.labs import service as labs_service

    users = make_users_fast(database, "ana")
    with database.session() as db:
        ana = db.get(User, users["ana"].id)
        assert ana is not None and ana.default_project_id is not None
        lab_id = labs_service.create_lab(
            db, settings, ana, project_id=ana.default_project_id, name="droplab"
        ).id
    login(page, live_server, "ana", PASSWORD)
    page.goto(f"{live_server}/labs/{lab_id}/files")
    page.evaluate(REAL_DROP, ["[data-upload]", [{"name": "dropped.txt", "text": "hello"}]])
    page.wait_for_load_state("load")  # the tab reloads once every file is up
    page.locator("#file-list").get_by_text("dropped.txt", exact=True).wait_for()
    response = page.request.get(f"{live_server}/api/v1/labs/{lab_id}/files")
    assert response.ok
    assert "dropped.txt" in response.text()


def test_small_thumbnails_are_scaled_up_pixelated(
    live_server: str, page: Any, database: Database
) -> None:
    make_users_fast(database, "ana")
    login(page, live_server, "ana", PASSWORD)
    listed = page.request.get(f"{live_server}/api/v1/datasets").json()
    digits = next(d["id"] for d in listed if d["name"] == "digits")
    page.goto(f"{live_server}/datasets/{digits}?path=train/3")
    thumb = page.locator("#file-table img.thumb").first
    expect(thumb).to_have_class(re.compile(r"\bpixelated\b"))
    shown = thumb.evaluate(
        "i => [i.naturalWidth, i.clientWidth, getComputedStyle(i).imageRendering]"
    )
    assert 0 < shown[0] < shown[1] and shown[2] == "pixelated"  # tiny digits, drawn bigger
