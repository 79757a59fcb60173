"""Benchmark of a hostile mlsteam.yml save (a script, not a test):
`python -m tests.bench.bench_yaml_save` (set BENCH_YAML_KIB to change the 256 KiB size).

Against a real uvicorn server (SQLite), with a same-run baseline:
- baseline: /healthz latency (median and max of 40 calls) with the server idle;
- hostile save: `PUT /api/v1/labs/{id}/config` with `x: ` followed by `[` up to the size
  (a deeply nested flow sequence): its answer and time, the /healthz latency measured every
  10 ms while it runs, and the time of concurrent writes (a lab's description) sent with
  the save and 0.1 s into it, with their answers (500 "database is locked" when the save
  holds the lock).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from labyard.app import create_app
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database
from tests.bench.bench_tensorboard import logged_in_client
from tests.factories import make_users_fast
from tests.serving import serve_in_thread

KIB = int(os.environ.get("BENCH_YAML_KIB", "256"))
SAVE_TIMEOUT_S = float(os.environ.get("BENCH_YAML_TIMEOUT_S", "600"))


def healthz_ms(client: httpx.Client, failures: list[int] | None = None) -> float:
    """Milliseconds of one /healthz call; a status other than 200 goes to `failures`."""
    start = time.perf_counter()
    status = client.get("/healthz").status_code
    if status != 200:
        if failures is None:
            raise AssertionError(f"/healthz answered {status}")
        failures.append(status)
    return (time.perf_counter() - start) * 1000


def poll_healthz(base: str, stop: threading.Event, out: list[float], failures: list[int]) -> None:
    """Call /healthz every 10 ms until `stop` is set, appending each latency."""
    with httpx.Client(base_url=base, timeout=SAVE_TIMEOUT_S) as client:
        while not stop.is_set():
            out.append(healthz_ms(client, failures))
            time.sleep(0.01)


def summary(values: list[float]) -> str:
    """Median and max of latencies in ms."""
    if not values:
        return "no samples"
    return f"median {statistics.median(values):.1f} ms, max {max(values):.1f} ms (n={len(values)})"


def hostile_save(client: httpx.Client, lab_id: int, text: str) -> tuple[int, str, float]:
    """The save's status, the start of its answer, and its seconds."""
    start = time.perf_counter()
    try:
        answer = client.put(
            f"/api/v1/labs/{lab_id}/config", json={"content": text}, timeout=SAVE_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        return 0, f"no answer: {type(exc).__name__}", time.perf_counter() - start
    return answer.status_code, answer.text[:160], time.perf_counter() - start


def concurrent_write(
    base: str, client: httpx.Client, lab_id: int, delay: float, out: list[str]
) -> None:
    """After `delay` seconds, change the lab's description; record its status and time."""
    time.sleep(delay)
    start = time.perf_counter()
    with httpx.Client(
        base_url=base, cookies=client.cookies, headers=client.headers, timeout=SAVE_TIMEOUT_S
    ) as other:
        try:
            answer = other.patch(f"/api/v1/labs/{lab_id}", json={"description": "writable"})
        except httpx.HTTPError as exc:
            out.append(f"{type(exc).__name__} after {time.perf_counter() - start:.2f} s")
            return
    seconds = time.perf_counter() - start
    out.append(
        f"sent at +{delay:.1f} s: {answer.status_code} in {seconds:.2f} s {answer.text[:60]!r}"
    )


def measure(base: str, client: httpx.Client, lab_id: int, text: str) -> dict[str, Any]:
    """Idle /healthz, then the save with /healthz polled and two writes sent beside it."""
    for _ in range(5):
        healthz_ms(client)  # warm up
    idle = [healthz_ms(client) for _ in range(40)]
    idle_writes: list[str] = []
    for _ in range(3):
        concurrent_write(base, client, lab_id, 0.0, idle_writes)
    stop, during, failures, writes = threading.Event(), [], [], []  # type: ignore[var-annotated]
    threads = [threading.Thread(target=poll_healthz, args=(base, stop, during, failures))]
    threads += [
        threading.Thread(target=concurrent_write, args=(base, client, lab_id, delay, writes))
        for delay in (0.0, 0.1)
    ]
    for thread in threads:
        thread.start()
    status, body, seconds = hostile_save(client, lab_id, text)
    for thread in threads[1:]:
        thread.join()
    stop.set()
    threads[0].join()
    return {
        "idle_writes": idle_writes,
        "idle": idle,
        "during": during,
        "failures": failures,
        "writes": writes,
        "status": status,
        "body": body,
        "seconds": seconds,
    }


def main() -> None:
    text = "x: " + "[" * (KIB * 1024 - 3)
    with tempfile.TemporaryDirectory(prefix="bench-yaml-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", secret_key="x" * 40, start_scheduler=False)
        migrate(settings)
        database = Database(settings.resolved_database_url)
        app = create_app(settings, database=database)  # wires the hooks seeding needs
        seed(settings, database)
        ana = make_users_fast(database, "ana")["ana"]
        with (
            serve_in_thread(app) as base,
            logged_in_client(base, settings, database, ana) as client,
        ):
            made = client.post(
                "/api/v1/labs", json={"project_id": ana.default_project_id, "name": "bench"}
            )
            assert made.status_code == 201, made.text
            lab_id = made.json()["id"]
            before = client.get(f"/api/v1/labs/{lab_id}/config").json()["content"]
            r = measure(base, client, lab_id, text)
            after = client.get(f"/api/v1/labs/{lab_id}/config").json()["content"]
    print(f"hostile save of a {KIB} KiB nested YAML: {r['status']} in {r['seconds']:.3f} s")
    print(f"  answer: {r['body']!r}; file unchanged: {after == before}")
    print(f"baseline /healthz at idle: {summary(r['idle'])}")
    print(f"/healthz during the save:  {summary(r['during'])}; not 200: {r['failures']}")
    if r["idle"] and r["during"]:
        ratio = statistics.median(r["during"]) / statistics.median(r["idle"])
        print(f"  -> median ratio during/idle {ratio:.2f}")
    for write in r["idle_writes"]:
        print(f"baseline write at idle: {write}")
    for write in r["writes"]:
        print(f"concurrent write: {write}")


if __name__ == "__main__":
    main()
