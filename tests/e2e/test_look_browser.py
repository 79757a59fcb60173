"""The look and its access, in a real browser: the main pages follow the system's colour scheme
(dark background and light text with prefers-color-scheme: dark, the reverse with light), no
page shows an emoji pictograph (icons are inline SVG), the jobs list's sortable headers are
buttons whose <th> carries aria-sort, progress bars are role=progressbar with a numeric value,
and Tab reaches the main navigation and a sort button with a visible focus ring."""

# ruff: noqa: F811  (tests take the `world` fixture imported from the widths test by name)
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import login
from tests.e2e.test_page_widths_browser import World, settle, slug, world  # noqa: F401
from tests.factories import ADMIN_PASSWORD, make_job_row

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# the pictographs of Unicode's emoji blocks (and the variation selector that makes one an emoji)
EMOJI = (
    r"[\u2300-\u23FF\u2460-\u24FF\u25A0-\u25FF\u2600-\u27BF\u2900-\u297F\u2B00-\u2BFF"
    r"\u3030\u303D\uFE0F\u{1F000}-\u{1FAFF}]"
)

SCAN = """(pattern) => {
  const emoji = new RegExp(pattern, "u");
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (emoji.test(n.nodeValue)) found.push(n.nodeValue.trim().slice(0, 40));
  }
  for (const el of document.querySelectorAll("*")) {
    for (const pseudo of ["::before", "::after"]) {
      const content = getComputedStyle(el, pseudo).content;
      if (content && content !== "none" && emoji.test(content)) found.push(pseudo + " " + content);
    }
  }
  return found;
}"""

COLOURS = """() => {
  const luminance = (css) => {
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  };
  const style = getComputedStyle(document.body);
  const main = getComputedStyle(document.querySelector("main"));
  return [luminance(style.backgroundColor), luminance(main.color), style.backgroundColor];
}"""


def main_pages(made: World) -> list[str]:
    """Overview, jobs, a job, a lab, datasets, admin, a project and a sweep."""
    return [
        "/",
        "/jobs",
        f"/jobs/{made.job_id}",
        f"/labs/{made.lab_id}",
        "/datasets",
        f"/datasets/{made.dataset_id}",
        "/admin",
        f"/projects/{made.project_id}",
        f"/sweeps/{made.sweep_id}",
    ]


@pytest.fixture
def running(database: Any, settings: Any, world: World) -> int:
    """A running job 40 % done, so the lists and the overview draw progress bars."""
    return make_job_row(
        database,
        settings,
        world.project_id,
        status="running",
        name="half way",
        progress_fraction=0.4,
        eta_seconds=90,
    )


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_pages_follow_the_colour_scheme_and_show_no_emoji(
    live_server: str,
    page: Any,
    world: World,
    scheme: str,
) -> None:
    shots = os.environ.get("LABYARD_SCREENSHOTS")  # the look in each scheme, for review
    page.emulate_media(color_scheme=scheme)
    login(page, live_server, "admin", ADMIN_PASSWORD)
    wrong, emoji = [], []
    for url in main_pages(world):
        page.goto(live_server + url)
        settle(page)
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{scheme}-{slug(url)}.png"), full_page=True)
        background, text, css = page.evaluate(COLOURS)
        dark_ok = background < 0.2 and text > 0.7
        light_ok = background > 0.8 and text < 0.3
        if not (dark_ok if scheme == "dark" else light_ok):
            wrong.append(f"{url}: background {css} ({background:.2f}), text {text:.2f}")
        emoji += [f"{url}: {found}" for found in page.evaluate(SCAN, EMOJI)]
    assert not wrong, f"pages not in the {scheme} scheme: {wrong}"
    assert not emoji, f"emoji pictographs on the pages: {emoji}"


def test_dataset_folders_are_svg_icons(live_server: str, page: Any, world: World) -> None:
    login(page, live_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_server}/datasets/{world.dataset_id}")
    icon = page.locator("#browser svg.icon use[href='#i-folder']").first
    assert icon.count() == 1
    drawn = page.locator("#browser svg.icon").first.bounding_box()
    assert drawn is not None and drawn["width"] > 10  # the sprite's symbol resolves and draws
    assert page.locator("#browser svg.icon").first.get_attribute("aria-hidden") == "true"


def test_sortable_headers_are_buttons_with_aria_sort(
    live_server: str,
    page: Any,
    world: World,
) -> None:
    login(page, live_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_server}/jobs")
    sorts = page.locator("table.jobs th button.sort")
    assert sorts.count() >= 4
    assert page.locator("table.jobs th a.sort").count() == 0
    status_th = page.locator("table.jobs thead th", has=page.locator("#sort-status"))
    assert status_th.get_attribute("aria-sort") is None  # sorted by id: not this column
    page.click("#sort-status")
    page.wait_for_function(
        "() => document.querySelector('#sort-status').closest('th').getAttribute('aria-sort')"
    )
    assert status_th.get_attribute("aria-sort") == "descending"
    assert "sort=status" in page.url  # the sorted list has its own address
    id_th = page.locator("table.jobs thead th", has=page.locator("#sort-id"))
    assert id_th.get_attribute("aria-sort") is None  # one sorted column at a time
    page.click("#sort-status")
    page.wait_for_function(
        "() => document.querySelector('#sort-status').closest('th')"
        ".getAttribute('aria-sort') === 'ascending'"
    )


def test_progress_bars_carry_role_and_value(
    live_server: str,
    page: Any,
    world: World,
    running: int,
) -> None:
    login(page, live_server, "admin", ADMIN_PASSWORD)
    for url in ("/", "/jobs", f"/jobs/{running}"):
        page.goto(live_server + url)
        bar = page.locator(f"[role=progressbar][aria-label='Progress of job {running}']")
        bar.first.wait_for(state="visible")
        assert float(bar.first.get_attribute("aria-valuenow")) == pytest.approx(40.0), url
        assert bar.first.get_attribute("aria-valuemin") == "0"
        assert bar.first.get_attribute("aria-valuemax") == "100"
        assert float(bar.first.evaluate("(el) => el.value")) == pytest.approx(40.0)
    # a queued job shows no bar in the list; every bar on the page has a numeric value
    page.goto(f"{live_server}/jobs")
    bars = page.locator("table.jobs [role=progressbar]:visible")
    assert bars.count() == 1
    values = page.eval_on_selector_all(
        "[role=progressbar]:not([hidden])",
        "(els) => els.map((e) => e.getAttribute('aria-valuenow'))",
    )
    assert values and all(v is not None and float(v) >= 0 for v in values)


def focused(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
          const el = document.activeElement, style = getComputedStyle(el);
          return {id: el.id, text: el.textContent.trim(), nav: !!el.closest("nav.mainnav"),
                  sort: el.matches("th button.sort"), outline: style.outlineStyle,
                  width: parseFloat(style.outlineWidth), visible: el.matches(":focus-visible")};
        }"""
    )


def test_tab_reaches_the_nav_and_a_sort_button_with_a_focus_ring(
    live_server: str,
    page: Any,
    world: World,
) -> None:
    login(page, live_server, "admin", ADMIN_PASSWORD)
    page.goto(f"{live_server}/jobs")
    seen_nav = seen_sort = None
    for _ in range(60):
        page.keyboard.press("Tab")
        now = focused(page)
        if now["nav"] and seen_nav is None:
            seen_nav = now
        if now["sort"]:
            seen_sort = now
            break
    assert seen_nav is not None, "Tab never reached the main navigation"
    assert seen_sort is not None, "Tab never reached a sort button"
    for ring in (seen_nav, seen_sort):
        assert ring["visible"] and ring["outline"] != "none" and ring["width"] >= 2, ring
    # Enter sorts from the keyboard, and the focus stays on the button after the reload
    page.keyboard.press("Enter")
    page.wait_for_url("**sort=**")
    page.wait_for_function(
        f"() => document.activeElement && document.activeElement.id === {seen_sort['id']!r}"
    )
    th = page.locator("table.jobs thead th", has=page.locator(f"[id='{seen_sort['id']}']"))
    assert th.get_attribute("aria-sort") in ("ascending", "descending")
