"""Issue 11 in a real browser, labs: the name rule's message next to the field, flavors that
can never run here disabled with their reason, grid values as chips (mouse and keyboard), and
the Files tab's Rename / Move / New folder dialogs with the server's errors inside them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.labs.models import Lab
from labyard.labs.service import LAB_NAME_RULE
from tests.e2e.conftest import login
from tests.factories import ADMIN_PASSWORD

FITS = "document.documentElement.scrollWidth <= window.innerWidth"
GPU8_REASON = "can't run here: it needs 8 GPU(s) and this node has 1"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """This installation: one GPU, whatever the test machine has."""
    return settings.model_copy(update={"gpus": "0"})


@pytest.fixture(autouse=True)
def _setup(page: Any, database: Database) -> None:
    """A flavor that never fits (8 GPUs); the browser's own favicon request answered."""
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    with database.session() as db:
        db.add(Flavor(name="gpu8", gpus=8, cpus=0.1, memory_mb=64))


def _new_lab(page: Any, base: str, name: str, template: str | None = None) -> str:
    """Create a lab through the form; the URL of its Files tab."""
    page.goto(f"{base}/labs")
    page.fill("#create-lab input[name=name]", name)
    if template:
        page.check("#create-lab input[name=use_template]")
        page.check(f"#create-lab input[name=template][value={template}]")
    page.click("#create-lab button[type=submit]")
    page.wait_for_url(re.compile(r".*/labs/\d+/files$"))
    return str(page.url)


def test_long_name_shows_the_rule_and_flavor_reason(
    live_server: str, page: Any, database: Database
) -> None:
    from playwright.sync_api import expect

    login(page, live_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_server}/labs")
    expect(page.locator("#name-rule")).to_have_text(LAB_NAME_RULE)  # the hint
    gpu8 = page.locator("#create-lab select[name=flavor] option[value=gpu8]")
    expect(gpu8).to_be_disabled()
    expect(gpu8).to_contain_text(GPU8_REASON)
    page.fill("#create-lab input[name=name]", "thirteen-char")
    expect(page.locator("#create-lab input[name=name]")).to_have_value("thirteen-char")
    page.click("#create-lab button[type=submit]")
    expect(page.locator("#name-rule.form-error")).to_have_text(LAB_NAME_RULE)
    expect(page.locator("#create-lab input[name=name]")).to_have_attribute("aria-invalid", "true")
    with database.session() as db:
        assert db.scalar(select(func.count()).select_from(Lab)) == 0

    _new_lab(page, live_server, "cls", "classification")
    page.click("nav.subnav >> text=Parameters")
    page.wait_for_load_state()
    page.click("button:has-text('Submit Job')")
    review = page.locator("#review select[name=flavor] option[value=gpu8]")
    expect(review).to_be_disabled()
    expect(review).to_contain_text(GPU8_REASON)


def test_grid_values_are_chips(live_server: str, page: Any) -> None:
    from playwright.sync_api import expect

    login(page, live_server, "admin", ADMIN_PASSWORD)
    _new_lab(page, live_server, "chips", "classification")
    page.click("nav.subnav >> text=Parameters")
    page.wait_for_load_state()
    count = page.locator("#job-count")
    expect(count).to_have_text("1 job will be created")
    network = page.locator("[data-chips=network]")
    resnet = network.locator("button.chip", has_text="resnet18")
    expect(resnet).to_have_attribute("aria-pressed", "false")
    resnet.click()  # mouse adds
    expect(resnet).to_have_attribute("aria-pressed", "true")
    expect(count).to_have_text("2 jobs will be created")
    vgg = network.locator("button.chip", has_text="vgg16_bn")
    vgg.focus()
    page.keyboard.press("Space")  # keyboard adds
    expect(count).to_have_text("3 jobs will be created")
    page.keyboard.press("Enter")  # and removes
    expect(vgg).to_have_attribute("aria-pressed", "false")
    expect(count).to_have_text("2 jobs will be created")

    batch = page.locator("[data-chips=batch_size]")
    entry = batch.locator("input[data-chip-entry]")
    entry.fill("32")
    entry.press("Enter")  # a typed value becomes a chip
    entry.type("128,")  # so does one ended by a comma
    expect(batch.locator("[data-chip]")).to_have_text(["64×", "32×", "128×"])
    expect(count).to_have_text("6 jobs will be created")
    batch.get_by_role("button", name="Remove 64").click()  # mouse removes
    expect(count).to_have_text("4 jobs will be created")
    batch.get_by_role("button", name="Remove 128").focus()
    page.keyboard.press("Enter")  # keyboard removes
    expect(batch.locator("[data-chip]")).to_have_text(["32×"])
    expect(count).to_have_text("2 jobs will be created")
    entry.fill("x")
    entry.press("Enter")
    expect(page.locator(".param-field", has_text="batch_size")).to_contain_text(
        "is not a valid int"
    )
    batch.get_by_role("button", name="Remove x").click()
    expect(count).to_have_text("2 jobs will be created")

    page.click("button:has-text('Submit Job')")
    expect(page.locator("#review")).to_contain_text("Confirm 2 jobs")
    assert page.evaluate(FITS)
    page.click("button:has-text('Confirm and submit')")
    page.wait_for_url(re.compile(r".*/labs/\d+/jobs$"))
    expect(page.locator("tr[data-job]")).to_have_count(2)
    expect(page.locator("table.lab-jobs")).to_contain_text("network=resnet18")
    expect(page.locator("table.lab-jobs")).to_contain_text("batch_size=32")


def _dialog_ok(page: Any, value: str, *, navigates: bool = False) -> None:
    """Type `value` and press OK; when it succeeds, wait for the reloaded page's scripts."""
    page.fill("#file-dialog-value", value)
    if not navigates:
        page.click("#file-dialog button:has-text('OK')")
        return
    with page.expect_navigation(wait_until="load"):
        page.click("#file-dialog button:has-text('OK')")


@pytest.mark.refused_requests
def test_rename_move_and_new_folder_dialogs(live_server: str, page: Any) -> None:
    from playwright.sync_api import expect

    login(page, live_server, "admin", ADMIN_PASSWORD)
    files_url = _new_lab(page, live_server, "dialogs")
    dialog = page.locator("#file-dialog")
    error = page.locator("#file-dialog-error")
    row = page.locator("#file-list tr", has_text="main.py")

    # Rename: Escape closes and gives focus back; a clash is shown in the dialog.
    row.get_by_role("button", name="Rename").click()
    expect(dialog).to_be_visible()
    expect(page.locator("#file-dialog-value")).to_be_focused()
    expect(page.locator("#file-dialog-value")).to_have_value("main.py")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row.get_by_role("button", name="Rename")).to_be_focused()
    row.get_by_role("button", name="Rename").click()
    _dialog_ok(page, "mlsteam.yml")
    expect(error).to_have_text("'mlsteam.yml' already exists.")
    assert page.evaluate(FITS)
    expect(page.locator("#file-dialog-value")).to_have_attribute("aria-invalid", "true")
    page.click("#file-dialog button:has-text('Cancel')")
    expect(dialog).to_be_hidden()
    row.get_by_role("button", name="Rename").click()
    _dialog_ok(page, "run.py", navigates=True)
    expect(page.locator("#file-list")).to_contain_text("run.py")
    expect(page.locator("#file-list")).not_to_contain_text("main.py")

    # New folder, then the same name again: the clash in the dialog.
    page.get_by_role("button", name="New folder").click()
    _dialog_ok(page, "sub", navigates=True)
    expect(page.locator("#file-list")).to_contain_text("sub/")
    page.get_by_role("button", name="New folder").click()
    _dialog_ok(page, "sub")
    expect(error).to_have_text("'sub' already exists.")
    page.keyboard.press("Escape")

    # Move: out of the lab is refused in the dialog; into sub/ works.
    run = page.locator("#file-list tr", has_text="run.py")
    run.get_by_role("button", name="Move").click()
    _dialog_ok(page, "../..")
    expect(error).not_to_be_empty()
    expect(dialog).to_be_visible()
    _dialog_ok(page, "sub", navigates=True)
    expect(page.locator("#file-list")).not_to_contain_text("run.py")
    page.goto(f"{files_url}?path=sub")
    expect(page.locator("#file-list")).to_contain_text("run.py")
