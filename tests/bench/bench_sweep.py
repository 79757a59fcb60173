"""Benchmark of the sweep page's comparison tools (a script, not a test):
`python -m tests.bench.bench_sweep`.

Two sweeps in one database: 500 jobs and, as the same-run baseline, 10 jobs (three params,
two metrics of 100 points per job, as in bench_job_pages). Server side (median of 7): the
sweep page and its compare API, which is the parallel coordinates' data. Client side, in
Debian's Chromium (Playwright, never a downloaded browser): performance.now() around the
parallel coordinates' draw (SVG built, lines coloured, the table filtered, layout forced)
and around a brush on an axis (lines greyed, the table filtered, layout forced), median of 9.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labyard.app import create_app
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database
from tests import services
from tests.bench.bench_job_pages import make_sweep
from tests.factories import PASSWORD, access_token_for, make_users_fast, session_client
from tests.serving import serve_in_thread

SIZES = (500, 10)
REPEAT = 9

# Median ms of REPEAT draws and of REPEAT brush + clear pairs (each ends with a forced layout).
CLIENT = """(repeat) => {
  const pc = document.getElementById('parcoords').pc, force = () => document.body.offsetHeight;
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const draws = [], brushes = [];
  for (let k = 0; k < repeat; k++) {
    const a = performance.now(); pc.draw(); force(); draws.push(performance.now() - a);
  }
  let shown = 0;
  for (let k = 0; k < repeat; k++) {
    const a = performance.now(); pc.brush(0, 0.5, 1); force(); brushes.push(performance.now() - a);
    shown = document.querySelectorAll('#sweep-table tbody tr[data-job]:not([hidden])').length;
    pc.clear();
  }
  return {draw: median(draws), brush: median(brushes), lines: pc.paths.length, shown: shown};
}"""


def timed(fn: Callable[[], Any], repeat: int = 7) -> float:
    """Median seconds of `fn` over `repeat` runs (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def fetcher(client: Any, url: str, headers: dict[str, str]) -> Callable[[], Any]:
    """A GET of `url` that fails on an error answer."""
    return lambda: client.get(url, headers=headers).raise_for_status()


def server_side(app: Any, database: Database, user: Any, sweeps: dict[int, int]) -> None:
    token = access_token_for(app, database, user)
    headers = {"Authorization": f"Bearer {token}"}
    figures: dict[int, tuple[float, float]] = {}
    with session_client(app, database, user) as client:
        for n, sweep_id in sweeps.items():
            page = timed(fetcher(client, f"/sweeps/{sweep_id}", {}))
            data = timed(fetcher(client, f"/api/v1/sweeps/{sweep_id}/compare", headers))
            figures[n] = (page, data)
            label = " (baseline)" if n == min(sweeps) else ""
            print(
                f"{n} jobs{label}: sweep page {page * 1000:.1f} ms; "
                f"parallel coordinates data (compare API) {data * 1000:.1f} ms"
            )
    (big_page, big_data), (small_page, small_data) = figures[max(sweeps)], figures[min(sweeps)]
    print(
        f"ratio {max(sweeps)} / {min(sweeps)} jobs: page {big_page / small_page:.2f}x, "
        f"data {big_data / small_data:.2f}x"
    )


def client_side(app: Any, sweeps: dict[int, int]) -> None:
    from playwright.sync_api import sync_playwright

    executable = services.chromium_path()
    with serve_in_thread(app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=services.CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "bench")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        for n, sweep_id in sweeps.items():
            page.goto(f"{base}/sweeps/{sweep_id}")
            page.wait_for_selector("#parcoords svg.pc")
            got = page.evaluate(CLIENT, REPEAT)
            assert got["lines"] == n, got
            label = " (baseline)" if n == min(sweeps) else ""
            print(
                f"Chromium, {n} jobs{label}: parallel coordinates draw {got['draw']:.1f} ms, "
                f"brush {got['brush']:.1f} ms ({got['shown']} of {n} rows left)"
            )
        browser.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=f"sqlite:///{tmp}/bench.db",
            secret_key="bench-secret-key-for-labyard-0123456789abcdef",
            start_scheduler=False,
            admin_password="bench-admin-password",
        )
        migrate(settings)
        database = Database(settings.resolved_database_url)
        seed(settings, database)
        app = create_app(settings, database=database)
        user = make_users_fast(database, "bench")["bench"]
        sweeps = {
            n: make_sweep(database, user.default_project_id, jobs=n, points=100)[0] for n in SIZES
        }
        print("== server ==")
        server_side(app, database, user, sweeps)
        print("== browser ==")
        try:
            client_side(app, sweeps)
        except services.ServiceMissing as exc:
            print(f"client-side figures skipped: {exc}")
        database.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
