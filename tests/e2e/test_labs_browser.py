"""The whole labs flow in a real browser: log in, create a lab from the classification
template, see `digits` attached, pick two networks and two batch sizes, see "4 jobs will be
created", submit, see 4 jobs in the lab's list."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import login
from tests.factories import ADMIN_PASSWORD


@pytest.fixture(autouse=True)
def _no_favicon(page: Any) -> None:
    """The app serves no /favicon.ico yet: answer the browser's own request for it."""
    page.context.route("**/favicon.ico", lambda route: route.fulfill(status=204))


def test_lab_from_template_to_four_jobs(live_server: str, page: Any) -> None:
    from playwright.sync_api import expect

    login(page, live_server, "admin", ADMIN_PASSWORD)
    page.click("nav.mainnav >> text=Labs")
    page.wait_for_url(f"{live_server}/labs")
    page.fill("#create-lab input[name=name]", "digits-cls")
    page.check("#create-lab input[name=use_template]")
    page.check("#create-lab input[name=template][value=classification]")
    page.select_option("#create-lab select[name=flavor]", "cpu")
    page.click("#create-lab button[type=submit]")
    page.wait_for_url(re.compile(r".*/labs/\d+/files$"))
    expect(page.locator("#file-list")).to_contain_text("train.py")
    expect(page.locator("#lab-datasets-summary")).to_contain_text("digits")

    page.click("nav.subnav >> text=Datasets")
    expect(page.locator("#attached")).to_contain_text("/mlsteam/input/digits")

    page.click("nav.subnav >> text=Parameters")
    page.wait_for_load_state()  # htmx binds the form's triggers once the page has loaded
    expect(page.locator("#job-count")).to_have_text("1 job will be created")
    page.click("[data-chips=network] button.chip:has-text('resnet18')")
    page.fill("[data-chips=batch_size] input[data-chip-entry]", "32")
    page.press("[data-chips=batch_size] input[data-chip-entry]", "Enter")
    expect(page.locator("#job-count")).to_have_text("4 jobs will be created")
    epochs = page.locator("[data-chips=num_epoch]")
    epochs.locator("input[data-chip-entry]").fill("2, x")
    epochs.locator("input[data-chip-entry]").press("Enter")
    expect(page.locator("#job-count")).to_have_text("0 jobs will be created")
    expect(page.locator(".param-field", has_text="num_epoch")).to_contain_text("is not a valid int")
    for value in ("10", "x"):
        epochs.get_by_role("button", name=f"Remove {value}").click()
    expect(page.locator("#job-count")).to_have_text("4 jobs will be created")

    page.click("button:has-text('Submit Job')")
    expect(page.locator("#review")).to_contain_text("Confirm 4 jobs")
    page.select_option("#review select[name=flavor]", "cpu")
    page.click("button:has-text('Confirm and submit')")
    page.wait_for_url(re.compile(r".*/labs/\d+/jobs$"))
    expect(page.locator("tr[data-job]")).to_have_count(4)
    expect(page.locator("table.lab-jobs")).to_contain_text("network=resnet18")
    expect(page.locator("table.lab-jobs")).to_contain_text("batch_size=64")


def test_config_error_marks_the_line(live_server: str, page: Any) -> None:
    from playwright.sync_api import expect

    login(page, live_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_server}/labs")
    page.fill("#create-lab input[name=name]", "cfg")
    page.click("#create-lab button[type=submit]")
    page.wait_for_url(re.compile(r".*/labs/\d+/files$"))
    page.click("nav.subnav >> text=Config")
    page.wait_for_selector(".CodeMirror")
    page.evaluate(
        "document.querySelector('.CodeMirror').CodeMirror.setValue('command: x\\nwhat: 1\\n')"
    )
    page.click("button:has-text('Save')")
    expect(page.locator("#config-result")).to_contain_text("line 2: unknown key 'what'")
    expect(page.locator(".cm-error-line")).to_have_count(1)
