"""Benchmarks of TensorBoard (a script, not a test): `python -m tests.bench.bench_tensorboard`.

Every figure is compared with a baseline measured in the same run, against a real uvicorn
server (SQLite) and real TensorBoard processes:
- cold open: from the "Open TensorBoard" click (`POST /tensorboards/open`) to the first
  proxied TensorBoard page (`GET /tensorboard/<id>/` answering 200), polling the status
  fragment every 50 ms (the page polls every 1 s, which adds up to 1 s on screen); vs
  starting the same TensorBoard command by hand and polling it directly until its page
  answers.
- warm open: the same click when that TensorBoard already runs (reuse), to its first page.
- proxy: median time of TensorBoard's `data/runs` and its 200 KiB index page through the
  proxy vs straight from TensorBoard's port (and, for scale, a Labyard API call with the
  same login and permission checks).
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from labyard.app import create_app
from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database
from labyard.tensorboard import process
from labyard.tensorboard import service as tb_service
from labyard.web.deps import SESSION_COOKIE, cookie_signer
from tests.factories import make_job_with_scalars, make_users_fast
from tests.serving import free_port, serve_in_thread

ROUNDS = 3
POLL_S = 0.05
PROXY_REQUESTS = 50


@contextmanager
def live_server(settings: Settings, database: Database) -> Iterator[str]:
    """A real uvicorn server of the app in a thread; its base URL."""
    with serve_in_thread(create_app(settings, database=database)) as base:
        yield base


def logged_in_client(base: str, settings: Settings, database: Database, user: User) -> httpx.Client:
    """An httpx client holding a browser session of `user` (cookie + CSRF header)."""
    with database.session() as db:
        row = auth_service.create_session(db, settings, db.get(User, user.id))  # type: ignore[arg-type]
        session_id, csrf = row.id, row.csrf_token
    client = httpx.Client(base_url=base, timeout=60)
    client.cookies.set(SESSION_COOKIE, cookie_signer(settings, "session").dumps(session_id))
    client.headers["X-CSRF-Token"] = csrf
    return client


def until(check: Callable[[], bool]) -> None:
    while not check():
        time.sleep(POLL_S)


def click_to_first_page(client: httpx.Client, job_id: int) -> tuple[float, int]:
    """Seconds from the click to the first proxied TensorBoard page; the instance id."""
    start = time.perf_counter()
    clicked = client.post(
        "/tensorboards/open", data={"job_ids": str(job_id)}, headers={"HX-Request": "true"}
    )
    assert clicked.status_code == 204, clicked.text
    tb_id = int(clicked.headers["HX-Redirect"].rsplit("/", 1)[1])
    until(lambda: "tb-frame" in client.get(f"/tensorboards/{tb_id}/status").text)
    page = client.get(f"/tensorboard/{tb_id}/")
    assert page.status_code == 200
    return time.perf_counter() - start, tb_id


def direct_start_to_first_page(root: Path, job_logdir: Path, n: int) -> float:
    """Seconds from starting the same TensorBoard by hand to its first page."""
    port = free_port()
    args = process.command(90_000 + n, {"run": str(job_logdir)}, port)
    base = f"http://127.0.0.1:{port}{process.path_prefix(90_000 + n)}"
    start = time.perf_counter()
    with (root / f"direct-{n}.log").open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        until(lambda: process.answers(port, 90_000 + n, timeout=1.0))
        assert httpx.get(f"{base}/", verify=False, trust_env=False).status_code == 200
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait()


def median_seconds(get: Callable[[], httpx.Response]) -> float:
    times = []
    for _ in range(PROXY_REQUESTS):
        start = time.perf_counter()
        assert get().status_code == 200
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tb-") as tmp:
        root = Path(tmp)
        settings = Settings(
            data_dir=root / "data",
            secret_key="x" * 40,
            start_scheduler=False,
            tensorboard_max_instances=ROUNDS + 2,
        )
        migrate(settings)
        database = Database(settings.resolved_database_url)
        seed(settings, database)
        ana = make_users_fast(database, "ana")["ana"]
        assert ana.default_project_id is not None
        jobs = [
            make_job_with_scalars(database, settings, ana.default_project_id, name=f"run{i}")
            for i in range(ROUNDS)
        ]
        with (
            live_server(settings, database) as base,
            logged_in_client(base, settings, database, ana) as client,
        ):
            cold, direct, warm = [], [], []
            last_id = 0
            for n, job_id in enumerate(jobs):
                logdir = tb_service.job_logdir(settings, job_id)
                direct.append(direct_start_to_first_page(root, logdir, n))
                seconds, last_id = click_to_first_page(client, job_id)
                cold.append(seconds)
                warm.append(click_to_first_page(client, job_id)[0])
            with database.session() as db:  # the last instance gives the proxy figures
                port = db.get(tb_service.TensorBoardInstance, last_id).port  # type: ignore[union-attr]
            direct_base = f"http://127.0.0.1:{port}{process.path_prefix(last_id)}"
            proxied_runs = median_seconds(lambda: client.get(f"/tensorboard/{last_id}/data/runs"))
            straight = httpx.Client(verify=False, trust_env=False)
            direct_runs = median_seconds(lambda: straight.get(f"{direct_base}/data/runs"))
            proxied_index = median_seconds(lambda: client.get(f"/tensorboard/{last_id}/"))
            direct_index = median_seconds(lambda: straight.get(f"{direct_base}/"))
            api_call = median_seconds(lambda: client.get("/api/v1/tensorboards"))
        with database.session() as db:
            tb_service.stop_children(db)

    c, d, w = statistics.median(cold), statistics.median(direct), statistics.median(warm)
    print(
        f"cold open, click to first proxied page: median {c:.2f} s over {ROUNDS} "
        f"({', '.join(f'{x:.2f}' for x in cold)})"
    )
    print(
        f"  baseline, TensorBoard started by hand to its first page: median {d:.2f} s "
        f"-> ratio {c / d:.2f}"
    )
    print(
        f"warm open (reused), click to first proxied page: median {w * 1000:.0f} ms "
        f"-> {w / d:.3f} of a cold start by hand"
    )
    print(
        f"proxy data/runs: {proxied_runs * 1000:.1f} ms vs direct {direct_runs * 1000:.1f} ms "
        f"-> ratio {proxied_runs / direct_runs:.2f}"
    )
    print(f"  (for scale: Labyard's own GET /api/v1/tensorboards takes {api_call * 1000:.1f} ms)")
    print(
        f"proxy index page: {proxied_index * 1000:.1f} ms vs direct {direct_index * 1000:.1f} ms "
        f"-> ratio {proxied_index / direct_index:.2f}"
    )


if __name__ == "__main__":
    main()
