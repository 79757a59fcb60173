"""Benchmarks of the job pages (a script, not a test): `python -m tests.bench.bench_job_pages`.

Every figure is compared with a baseline measured in the same run:
- job page: server time to render a job page whose metrics hold 100,000 points, vs the same
  page of a job without metrics.
- live log: latency from a job printing a line (appended to its job.log exactly as the
  log wrapper does) to the event reaching each of 20 connected SSE viewers of the job page
  stream (p50, p95), vs one viewer.
- sweep: the sweep page and its JSON twin with 500 jobs (params + 2 series x 100 points);
  the page must render in under a second. Then MLflow's tracking server (`mlflow server`,
  own venv in /tmp, SQLite store in a temporary folder) holding the same 500 runs (params
  and metric histories logged through its REST API): its runs/search plus one metric's
  history per run (what its compare view fetches for the curves) against our compare API
  plus the sweep curves API, both over HTTP. Skipped (said so) when
  /tmp/mlflow-venv/bin/mlflow is missing: `python3 -m venv /tmp/mlflow-venv &&
  /tmp/mlflow-venv/bin/pip install mlflow`.

Bounded: about three minutes, most of it logging 100,000 points to MLflow. Every server it
starts (ours under uvicorn, mlflow) is stopped before it exits.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from labyard.app import create_app
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs.logs import LogWriter
from labyard.jobs.models import Job, Sweep
from labyard.jobs.service import job_dir
from tests.factories import access_token_for, make_users_fast, session_client
from tests.factories import add_points as store_curves
from tests.serving import free_port, serve_in_thread

MLFLOW = Path("/tmp/mlflow-venv/bin/mlflow")
VIEWERS = 20
LINES = 60
MARK = re.compile(r"MARK (\d+) ")


def timed(fn: Callable[[], Any], repeat: int = 7) -> float:
    """Median seconds of `fn` over `repeat` runs (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def make_job(database: Database, settings: Settings, project_id: int, **fields: Any) -> int:
    with database.session() as db:
        job = Job(
            project_id=project_id,
            params={"lr": 0.1},
            command=["true"],
            flavor="cpu",
            started_at=utcnow(),
            **{"name": "bench", "status": "succeeded", **fields},
        )
        db.add(job)
        db.flush()
        job_id = job.id
    folder = job_dir(settings, job_id)
    (folder / "lab").mkdir(parents=True)
    (folder / "output").mkdir()
    (folder / "lab" / "mlsteam.yml").write_text("command: python train.py\n")
    return job_id


def add_points(database: Database, job_id: int, series: dict[str, int]) -> None:
    curves = {
        name: [(float(i), 1.0 / (i + 1) + (i % 13) * 0.001) for i in range(count)]
        for name, count in series.items()
    }
    with database.session() as db:
        store_curves(db, job_id, curves)


# --------------------------------------------------------------------------- job page


def bench_job_page(app: Any, database: Database, settings: Settings, user: Any) -> None:
    project = user.default_project_id
    heavy = make_job(database, settings, project)
    add_points(
        database, heavy, {"Train_loss": 50_000, "Train_acc": 30_000, "Validation_loss": 20_000}
    )
    light = make_job(database, settings, project)
    writer = LogWriter(job_dir(settings, heavy) / "job.log", 1 << 30)
    for i in range(5000):
        writer.write_line(f"Train step={i} loss=0.5".encode())
    writer.close()
    (job_dir(settings, light) / "job.log").write_bytes(
        (job_dir(settings, heavy) / "job.log").read_bytes()
    )
    with session_client(app, database, user) as client:
        heavy_s = timed(lambda: client.get(f"/jobs/{heavy}").raise_for_status())
        light_s = timed(lambda: client.get(f"/jobs/{light}").raise_for_status())
        size = len(client.get(f"/jobs/{heavy}").content)
    print(f"job page, 100,000 metric points: {heavy_s * 1000:.1f} ms (page {size / 1024:.0f} KiB)")
    print(f"job page, no metrics (baseline):  {light_s * 1000:.1f} ms")
    print(f"ratio 100k points / none: {heavy_s / light_s:.2f}x")


# --------------------------------------------------------------------------- live log


async def _viewer(
    url: str, token: str, got: dict[int, float], ready: asyncio.Event, counter: list[int], n: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", url, headers=headers) as resp,
    ):
        counter[0] += 1
        if counter[0] == n:
            ready.set()
        async for line in resp.aiter_lines():
            now = time.perf_counter()
            for mark in MARK.findall(line):
                got.setdefault(int(mark), now)
            if len(got) >= LINES:
                return


async def _latency(base: str, token: str, path: Path, job_id: int, viewers: int) -> list[float]:
    start_offset = path.stat().st_size if path.exists() else 0
    url = f"{base}/jobs/{job_id}/events?cursor={start_offset}.0"
    received: list[dict[int, float]] = [{} for _ in range(viewers)]
    ready, counter = asyncio.Event(), [0]
    tasks = [
        asyncio.create_task(_viewer(url, token, received[i], ready, counter, viewers))
        for i in range(viewers)
    ]
    await asyncio.wait_for(ready.wait(), 60)
    await asyncio.sleep(0.5)
    writer = LogWriter(path, 1 << 30)
    sent: dict[int, float] = {}
    for i in range(LINES):
        sent[i] = time.perf_counter()
        await asyncio.to_thread(writer.write_line, f"MARK {i} some output".encode())
        await asyncio.sleep(0.05)
    writer.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return [got[i] - sent[i] for got in received for i in range(LINES)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_live(app: Any, database: Database, settings: Settings, user: Any) -> None:
    token = access_token_for(app, database, user)
    figures = {}
    with serve_in_thread(app) as base:
        for viewers in (1, VIEWERS):
            job_id = make_job(database, settings, user.default_project_id, status="running")
            path = job_dir(settings, job_id) / "job.log"
            lat = asyncio.run(_latency(base, token, path, job_id, viewers))
            p50, p95 = pct(lat, 0.5) * 1000, pct(lat, 0.95) * 1000
            figures[viewers] = (p50, p95)
            label = "" if viewers > 1 else " (baseline)"
            print(
                f"line -> {viewers} SSE viewer(s){label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms "
                f"({len(lat)} deliveries)"
            )
    (b50, b95), (m50, m95) = figures[1], figures[VIEWERS]
    print(f"ratio {VIEWERS} viewers / 1 viewer: p50 {m50 / b50:.2f}x, p95 {m95 / b95:.2f}x")


# --------------------------------------------------------------------------- sweep vs mlflow


def make_sweep(
    database: Database, project_id: int, jobs: int, points: int
) -> tuple[int, list[dict[str, Any]]]:
    runs = []
    with database.session() as db:
        sweep = Sweep(
            project_id=project_id,
            name="bench",
            flavor="cpu",
            grid={"lr": [0.1, 0.01], "bs": [16, 32]},
        )
        db.add(sweep)
        db.flush()
        for i in range(jobs):
            params = {"lr": 10 ** -(1 + i % 4), "bs": 16 * (1 + i % 3), "seed": i}
            job = Job(
                project_id=project_id,
                sweep_id=sweep.id,
                name=f"bench #{i}",
                status="succeeded",
                params=params,
                command=["true"],
                flavor="cpu",
            )
            db.add(job)
            db.flush()
            curves = {
                "Train_loss": [1.0 / (s + 1) + i * 1e-4 for s in range(points)],
                "Validation_acc": [s / points - i * 1e-4 for s in range(points)],
            }
            store_curves(
                db,
                job.id,
                {n: [(float(s), v) for s, v in enumerate(values)] for n, values in curves.items()},
            )
            runs.append({"params": params, "curves": curves})
        return sweep.id, runs


def start_mlflow(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{workdir / 'mlflow.db'}",
            "--default-artifact-root",
            str(workdir / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("mlflow server did not start")


def log_to_mlflow(base: str, runs: list[dict[str, Any]]) -> str:
    api = f"{base}/api/2.0/mlflow"
    with httpx.Client(timeout=60) as client:
        exp = client.post(f"{api}/experiments/create", json={"name": "bench"}).json()[
            "experiment_id"
        ]
        now = int(time.time() * 1000)
        for i, run in enumerate(runs):
            run_id = client.post(
                f"{api}/runs/create",
                json={"experiment_id": exp, "run_name": f"bench #{i}", "start_time": now},
            ).json()["run"]["info"]["run_id"]
            metrics = [
                {"key": n, "value": v, "timestamp": now, "step": s}
                for n, values in run["curves"].items()
                for s, v in enumerate(values)
            ]
            params = [{"key": k, "value": str(v)} for k, v in run["params"].items()]
            for start in range(0, len(metrics), 1000):
                body: dict[str, Any] = {"run_id": run_id, "metrics": metrics[start : start + 1000]}
                if start == 0:
                    body["params"] = params
                client.post(f"{api}/runs/log-batch", json=body).raise_for_status()
            client.post(f"{api}/runs/update", json={"run_id": run_id, "status": "FINISHED"})
    return exp


CURVE_METRIC = "Validation_acc"


def mlflow_fetch(client: httpx.Client, base: str, exp: str) -> Callable[[], int]:
    """runs/search for the experiment, then CURVE_METRIC's history of every run found."""
    api = f"{base}/api/2.0/mlflow"

    def fetch() -> int:
        runs = client.post(
            f"{api}/runs/search", json={"experiment_ids": [exp], "max_results": 1000}
        ).json()["runs"]
        points = 0
        for run in runs:
            history = client.get(
                f"{api}/metrics/get-history",
                params={"run_id": run["info"]["run_id"], "metric_key": CURVE_METRIC},
            )
            points += len(history.raise_for_status().json()["metrics"])
        return points

    return fetch


def ours_fetch(client: httpx.Client, base: str, sweep_id: int, token: str) -> Callable[[], int]:
    """Our sweep compare API, then the sweep curves API for CURVE_METRIC (what the page loads)."""
    headers = {"Authorization": f"Bearer {token}"}

    def fetch() -> int:
        compare = client.get(f"{base}/api/v1/sweeps/{sweep_id}/compare", headers=headers)
        assert len(compare.raise_for_status().json()["jobs"]) == 500
        curves = client.get(
            f"{base}/api/v1/sweeps/{sweep_id}/curves",
            params={"metric": CURVE_METRIC, "points": 300},
            headers=headers,
        ).raise_for_status()
        return sum(len(c["y"]) for c in curves.json()["curves"])

    return fetch


def bench_sweep(app: Any, database: Database, user: Any) -> None:
    sweep_id, runs = make_sweep(database, user.default_project_id, jobs=500, points=100)
    token = access_token_for(app, database, user)
    with session_client(app, database, user) as client:
        page_s = timed(lambda: client.get(f"/sweeps/{sweep_id}").raise_for_status())
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as api:
        compare_s = timed(
            lambda: api.get(
                f"/api/v1/sweeps/{sweep_id}/compare", headers=headers
            ).raise_for_status()
        )
        curves_s = timed(
            lambda: api.get(
                f"/api/v1/sweeps/{sweep_id}/curves?metric={CURVE_METRIC}", headers=headers
            ).raise_for_status()
        )
    verdict = "under 1 s: yes" if page_s < 1 else "under 1 s: NO"
    print(f"sweep page, 500 jobs: {page_s * 1000:.1f} ms ({verdict})")
    print(f"compare API, 500 jobs: {compare_s * 1000:.1f} ms; curves API: {curves_s * 1000:.1f} ms")
    if not MLFLOW.exists():
        print(f"MLflow comparison skipped: {MLFLOW} is missing (see this file's docstring)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_mlflow(Path(tmp))
        try:
            started = time.perf_counter()
            exp = log_to_mlflow(base, runs)
            took = time.perf_counter() - started
            print(f"(logged 500 runs, 100,000 points to MLflow in {took:.1f} s)")
            with httpx.Client(timeout=120) as client:
                theirs = mlflow_fetch(client, base, exp)
                assert theirs() == 500 * 100
                search = f"{base}/api/2.0/mlflow/runs/search"
                body = {"experiment_ids": [exp], "max_results": 1000}
                search_s = timed(lambda: client.post(search, json=body).raise_for_status())
                mlflow_s = timed(theirs, repeat=3)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    with serve_in_thread(app) as ours_base, httpx.Client(timeout=120) as client:
        url = f"{ours_base}/api/v1/sweeps/{sweep_id}/compare"
        compare_http = timed(lambda: client.get(url, headers=headers).raise_for_status())
        ours = ours_fetch(client, ours_base, sweep_id, token)
        assert ours() == 500 * 100
        ours_s = timed(ours, repeat=3)
    print(
        "table (params + latest metrics of 500 runs), HTTP: "
        f"ours compare {compare_http * 1000:.1f} ms vs MLflow runs/search "
        f"{search_s * 1000:.1f} ms; ratio MLflow / ours {search_s / compare_http:.2f}x"
    )
    print(
        f"table + {CURVE_METRIC} curves of 500 runs, HTTP: ours (compare + curves, 2 requests) "
        f"{ours_s * 1000:.1f} ms vs MLflow (runs/search + 500 get-history) "
        f"{mlflow_s * 1000:.1f} ms; ratio MLflow / ours {mlflow_s / ours_s:.2f}x "
        "(above 1: ours is faster)"
    )


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
        print("== job page ==")
        bench_job_page(app, database, settings, user)
        print("== live log ==")
        bench_live(app, database, settings, user)
        print("== sweep ==")
        bench_sweep(app, database, user)
        database.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
