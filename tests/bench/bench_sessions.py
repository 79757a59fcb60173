"""Benchmarks of lab sessions (a script, not a test): `python -m tests.bench.bench_sessions`.

Against a real uvicorn server (SQLite) with its scheduler in a thread (polling every 0.2 s)
and real JupyterLab processes; each figure has a baseline measured in the same run:
- cold start: from `POST /api/v1/labs/<id>/session` to the first JupyterLab page served
  through the proxy (`GET /labs/<id>/session/lab` answering 200, polled every 50 ms), vs
  starting the same JupyterLab command by hand and polling its socket directly. With Docker
  (and the image tests/integration/sessions/docker_image.py builds), the same in a container.
- kernel round trip: `execute_request` -> `execute_reply` of `1+1` over the kernel websocket
  through the proxy vs straight to JupyterLab's socket (median of 50, ratio).
- 20 concurrent clients: each lists the lab's files through JupyterLab's contents API 10
  times, through the proxy vs straight to the socket (wall time for all, ratio); 2 cores.
- 20 concurrent sessions: 20 labs each with its own running JupyterLab, one client each
  listing its files 10 times, through the proxy vs straight to each socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect, unix_connect

from labyard.app import create_app
from labyard.auth.models import User
from labyard.bootstrap import migrate, seed
from labyard.config import Settings
from labyard.db import Database
from labyard.flavors.models import Flavor
from labyard.jobs import service as jobs_service
from labyard.jobs.executors.docker import LABEL_INSTANCE, instance_id
from labyard.jobs.scheduler import Scheduler
from labyard.labs import service as labs_service
from labyard.sessions import jupyter
from tests import services
from tests.factories import access_token_for, make_users_fast
from tests.integration.sessions.docker_image import ensure_session_image
from tests.integration.sessions.jupyter_client import execute_request
from tests.serving import serve_in_thread

POLL_S = 0.05
ROUND_TRIPS = 50
CLIENTS, REQUESTS = 20, 10


def _wait_200(get: httpx.Client, url: str, headers: dict[str, str]) -> float:
    """Poll `url` until it answers 200; the monotonic time it did."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if get.get(url, headers=headers).status_code == 200:
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(POLL_S)
    raise RuntimeError(f"{url} never answered")


def direct_start(tmp: Path, settings: Settings) -> float:
    """Seconds from starting JupyterLab by hand to its first page on its socket."""
    folder, lab = tmp / "direct-job", tmp / "direct-lab"
    lab.mkdir()
    jupyter.write_files(settings, folder, 999_999, lab, 999_999, tcp=False)
    env = {**os.environ, "MLSTEAM_OUTPUT_DIR": str(folder / "output")}
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", jupyter.BOOTSTRAP],
        cwd=lab,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not jupyter.socket_path(folder).exists():
            time.sleep(POLL_S / 5)
        transport = httpx.HTTPTransport(uds=jupyter.connect_path(jupyter.socket_path(folder)))
        with httpx.Client(transport=transport) as client:
            headers = jupyter.auth_headers(settings, 999_999)
            done = _wait_200(client, f"http://localhost{jupyter.base_url(999_999)}lab", headers)
        return done - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def stop_session(base: str, lab_id: int, headers: dict[str, str]) -> None:
    """Stop the lab's session and wait until it has stopped."""
    url = f"{base}/api/v1/labs/{lab_id}/session"
    httpx.delete(url, headers=headers, timeout=30).raise_for_status()
    deadline = time.monotonic() + 120
    while httpx.get(url, headers=headers, timeout=30).json()["state"] != "stopped":
        if time.monotonic() > deadline:
            raise RuntimeError("the session did not stop")
        time.sleep(POLL_S)


def proxied_start(base: str, lab_id: int, headers: dict[str, str]) -> float:
    """Seconds from POST session to the first proxied JupyterLab page."""
    with httpx.Client(timeout=60) as client:
        start = time.monotonic()
        answer = client.post(
            f"{base}/api/v1/labs/{lab_id}/session", headers=headers, json={"flavor": "nb"}
        )
        answer.raise_for_status()
        done = _wait_200(client, f"{base}/labs/{lab_id}/session/lab", headers)
    return done - start


async def _round_trips(ws: object) -> float:
    samples = []
    for _ in range(ROUND_TRIPS):
        request = execute_request("1+1")
        start = time.perf_counter()
        await ws.send(json.dumps(request))  # type: ignore[attr-defined]
        while True:
            message = json.loads(await ws.recv())  # type: ignore[attr-defined]
            if (
                message["header"]["msg_type"] == "execute_reply"
                and message["parent_header"].get("msg_id") == request["header"]["msg_id"]
            ):
                break
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


async def kernel_round_trips(
    base: str, lab_id: int, headers: dict[str, str], sock: str, token: dict[str, str]
) -> tuple[float, float]:
    """Median execute round trip through the proxy and straight to the socket."""
    with httpx.Client(timeout=60) as client:
        kernel = client.post(
            f"{base}/labs/{lab_id}/session/api/kernels", headers=headers, json={"name": "python3"}
        ).json()["id"]
    path = f"/labs/{lab_id}/session/api/kernels/{kernel}/channels"
    ws_base = base.replace("http://", "ws://")
    async with connect(f"{ws_base}{path}", additional_headers=headers) as ws:
        await _round_trips(ws)  # warm the kernel
        proxied = await _round_trips(ws)
    async with unix_connect(sock, f"ws://localhost{path}", additional_headers=token) as ws:
        direct = await _round_trips(ws)
    return proxied, direct


Target = tuple[str, dict[str, str], str | None]  # URL, headers, Unix socket (direct)


def concurrent_lists(targets: list[Target]) -> float:
    """Wall seconds for CLIENTS threads each listing files REQUESTS times, client i on
    `targets[i % len(targets)]` (over its socket when it has one), each with its own
    connection."""

    def work(url: str, headers: dict[str, str], sock: str | None) -> None:
        transport = httpx.HTTPTransport(uds=sock, verify=False) if sock else None
        with httpx.Client(transport=transport, timeout=120, verify=False) as client:
            for _ in range(REQUESTS):
                client.get(url, headers=headers).raise_for_status()

    picks = [targets[i % len(targets)] for i in range(CLIENTS)]
    threads = [threading.Thread(target=work, args=pick) for pick in picks]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - start


def many_sessions(
    settings: Settings, database: Database, owner: User, base: str, headers: dict[str, str]
) -> tuple[float, float]:
    """CLIENTS labs each with its own running session; one client per session lists its
    files through the proxy, then straight to its socket (wall seconds of each)."""
    with database.session() as db:
        user = db.get(User, owner.id)
        assert user is not None and user.default_project_id is not None
        labs = [
            labs_service.create_lab(
                db, settings, user, project_id=user.default_project_id, name=f"many-{i}",
                flavor="tiny",
            ).id
            for i in range(CLIENTS)
        ]  # fmt: skip
    with httpx.Client(timeout=60) as client:
        for lab_id in labs:
            client.post(f"{base}/api/v1/labs/{lab_id}/session", headers=headers).raise_for_status()
        for lab_id in labs:
            _wait_200(client, f"{base}/labs/{lab_id}/session/api/contents", headers)
        job_ids = [
            client.get(f"{base}/api/v1/labs/{lab_id}/session", headers=headers).json()["job_id"]
            for lab_id in labs
        ]
    proxied: list[Target] = [
        (f"{base}/labs/{lab_id}/session/api/contents", headers, None) for lab_id in labs
    ]
    direct: list[Target] = []
    for lab_id, job_id in zip(labs, job_ids, strict=True):
        sock = jupyter.connect_path(jupyter.socket_path(jobs_service.job_dir(settings, job_id)))
        url = f"http://localhost/labs/{lab_id}/session/api/contents"
        direct.append((url, jupyter.auth_headers(settings, job_id), sock))
    through, straight = concurrent_lists(proxied), concurrent_lists(direct)
    for lab_id in labs:
        stop_session(base, lab_id, headers)
    return through, straight


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        settings = Settings(
            data_dir=tmp / "data",
            secret_key="bench-secret-key-0123456789abcdef0123",
            start_scheduler=False,
            scheduler_interval_seconds=0.2,
            job_user="",
        )
        migrate(settings)
        database = Database(settings.resolved_database_url)
        seed(settings, database)
        owner = make_users_fast(database, "owner")["owner"]
        with database.session() as db:
            db.add(Flavor(name="nb", gpus=0, cpus=1.0, memory_mb=1024, description="notebooks"))
            # CLIENTS sessions at once on 2 cores: each reserves a tenth of a core
            db.add(Flavor(name="tiny", gpus=0, cpus=0.1, memory_mb=400, description="many"))
            user = db.get(User, owner.id)
            assert user is not None and user.default_project_id is not None
            lab_id = labs_service.create_lab(
                db, settings, user, project_id=user.default_project_id, name="bench", flavor="nb"
            ).id
        app = create_app(settings, database=database)
        scheduler = Scheduler(settings, database)
        stop = threading.Event()
        threading.Thread(target=scheduler.run, args=(stop,), daemon=True).start()
        headers = {"authorization": f"Bearer {access_token_for(app, database, owner)}"}
        try:
            with serve_in_thread(app) as base:
                direct = direct_start(tmp, settings)
                proxied = proxied_start(base, lab_id, headers)
                print(
                    f"cold start (local): {proxied:.2f} s through Labyard vs {direct:.2f} s by "
                    f"hand (x{proxied / direct:.2f}; the scheduler polls every 0.2 s)"
                )
                with database.session() as db:
                    job_id = max(j.id for j in db.query(jobs_service.Job))
                folder = jobs_service.job_dir(settings, job_id)
                sock = jupyter.connect_path(jupyter.socket_path(folder))
                token = jupyter.auth_headers(settings, job_id)
                through, straight = asyncio.run(
                    kernel_round_trips(base, lab_id, headers, sock, token)
                )
                print(
                    f"kernel round trip: {through * 1000:.1f} ms through the proxy vs "
                    f"{straight * 1000:.1f} ms direct (x{through / straight:.2f})"
                )
                url = f"/labs/{lab_id}/session/api/contents"
                many_proxied = concurrent_lists([(f"{base}{url}", headers, None)])
                many_direct = concurrent_lists([(f"http://localhost{url}", token, sock)])
                ratio = many_proxied / many_direct
                print(
                    f"{CLIENTS} clients x {REQUESTS} file listings: {many_proxied:.2f} s through "
                    f"the proxy vs {many_direct:.2f} s direct (x{ratio:.2f}), "
                    f"{os.cpu_count()} cores"
                )
                # where the proxy's time goes: the platform's own authenticated GET, same load
                own = concurrent_lists([(f"{base}/api/v1/labs/{lab_id}", headers, None)])
                print(
                    f"  the platform's own API, same clients and requests: {own:.2f} s "
                    f"(x{own / many_direct:.2f} of direct JupyterLab)"
                )
                stop_session(base, lab_id, headers)
                through, straight = many_sessions(settings, database, owner, base, headers)
                print(
                    f"{CLIENTS} sessions at once, one client each x {REQUESTS} file listings: "
                    f"{through:.2f} s through the proxy vs {straight:.2f} s direct "
                    f"(x{through / straight:.2f}), {os.cpu_count()} cores"
                )
                stop.set()
                docker_start(settings, database, base, lab_id, headers, direct)
        finally:
            stop.set()


def docker_start(
    settings: Settings,
    database: Database,
    base: str,
    lab_id: int,
    headers: dict[str, str],
    direct: float,
) -> None:
    """The cold start again with the Docker executor (JupyterLab in a container), when a
    Docker Engine and the session test image are there."""
    try:
        image = ensure_session_image()
    except Exception as exc:  # noqa: BLE001 - no Docker here: say so and skip
        print(f"cold start (Docker): skipped ({exc})")
        return
    settings.executor, settings.docker_image, settings.docker_network = "docker", image, "none"
    scheduler = Scheduler(settings, database)
    stop = threading.Event()
    threading.Thread(target=scheduler.run, args=(stop,), daemon=True).start()
    try:
        cold = proxied_start(base, lab_id, headers)
        print(
            f"cold start (Docker): {cold:.2f} s through Labyard vs {direct:.2f} s for a local "
            f"JupyterLab by hand (x{cold / direct:.2f})"
        )
        stop_session(base, lab_id, headers)
    finally:
        stop.set()
        for container in services.docker_client().containers.list(
            all=True, filters={"label": f"{LABEL_INSTANCE}={instance_id(settings)}"}
        ):
            container.remove(force=True)


if __name__ == "__main__":
    main()
