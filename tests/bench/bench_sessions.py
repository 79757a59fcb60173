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
- Docker cold start: through Labyard vs the same container started by hand (`docker run` of
  the same image, command, mounts, user and limits) polled on its socket.

The bench pins itself to 2 cores (`os.sched_setaffinity`) before it starts anything: the
server, its threads, the clients and every JupyterLab process it starts (by hand or as a
session: children inherit the affinity) share those 2 cores, as on the 2-core target;
containers get the flavor's CPU limit (1 core) in both the Labyard and the by-hand case.
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
CORES = 2
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


def pin_to_cores(count: int = CORES) -> list[int]:
    """Pin this process (and so every thread and child it starts later) to the first
    `count` cores it may use; those cores."""
    cores = sorted(os.sched_getaffinity(0))[:count]
    os.sched_setaffinity(0, cores)
    return cores


def tree_cores(pid: int) -> list[int]:
    """The cores a process and its descendants may run on (all of them together)."""
    import psutil

    root = psutil.Process(pid)
    found: set[int] = set()
    for proc in [root, *root.children(recursive=True)]:
        found.update(os.sched_getaffinity(proc.pid))
    return sorted(found)


def _first_page(settings: Settings, folder: Path, job_id: int, start: float) -> float:
    """Seconds from `start` to the first JupyterLab page on the socket of `folder`."""
    deadline = time.monotonic() + 300
    while not jupyter.socket_path(folder).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("JupyterLab never made its socket")
        time.sleep(POLL_S / 5)
    transport = httpx.HTTPTransport(uds=jupyter.connect_path(jupyter.socket_path(folder)))
    with httpx.Client(transport=transport) as client:
        headers = jupyter.auth_headers(settings, job_id)
        done = _wait_200(client, f"http://localhost{jupyter.base_url(job_id)}lab", headers)
    return done - start


def direct_start(tmp: Path, settings: Settings) -> tuple[float, list[int]]:
    """Seconds from starting JupyterLab by hand to its first page on its socket, and the
    cores its process may use."""
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
        return _first_page(settings, folder, 999_999, start), tree_cores(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def docker_direct_start(tmp: Path, settings: Settings, image: str) -> float:
    """Seconds from `docker run` of the session's JupyterLab by hand (the executor's image,
    command, mounts, user, CPU and memory limits; no network) to its first page on its
    socket."""
    folder, lab = tmp / "docker-direct-job", tmp / "docker-direct-lab"
    lab.mkdir()
    jupyter.write_files(settings, folder, 999_998, lab, 999_998, tcp=False)
    output = folder / "output"
    user = f"{os.getuid()}:{os.getgid()}"
    if os.geteuid() == 0:  # as the executor does: a non-root user owning lab/ and output/
        for path in (lab, output, *output.rglob("*")):
            os.lchown(path, settings.docker_uid, settings.docker_gid)
        user = f"{settings.docker_uid}:{settings.docker_gid}"
    client = services.docker_client()
    start = time.monotonic()
    container = client.containers.run(
        image,
        ["python", "-c", jupyter.BOOTSTRAP],
        detach=True,
        user=user,
        working_dir="/mlsteam/lab",
        environment={"HOME": "/mlsteam", "MLSTEAM_OUTPUT_DIR": "/mlsteam/output"},
        volumes={
            str(lab): {"bind": "/mlsteam/lab", "mode": "rw"},
            str(output): {"bind": "/mlsteam/output", "mode": "rw"},
        },
        labels={LABEL_INSTANCE: instance_id(settings)},
        network_mode="none",
        nano_cpus=int(1e9),  # the "nb" flavor's 1 CPU
        mem_limit="1024m",
        init=True,
    )
    try:
        return _first_page(settings, folder, 999_998, start)
    finally:
        container.remove(force=True)


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
    cores = pin_to_cores()
    print(f"pinned to cores {cores} (server, clients and JupyterLab processes)")
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
                direct, by_hand_cores = direct_start(tmp, settings)
                proxied = proxied_start(base, lab_id, headers)
                print(
                    f"cold start (local): {proxied:.2f} s through Labyard vs {direct:.2f} s by "
                    f"hand (x{proxied / direct:.2f}; the scheduler polls every 0.2 s)"
                )
                with database.session() as db:
                    job = max(db.query(jobs_service.Job), key=lambda j: j.id)
                    job_id, pid = job.id, int(job.external_id.split(":")[0])
                print(f"  JupyterLab's cores: session {tree_cores(pid)}, by hand {by_hand_cores}")
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
                docker_start(tmp, settings, database, base, lab_id, headers)
        finally:
            stop.set()


def docker_start(
    tmp: Path,
    settings: Settings,
    database: Database,
    base: str,
    lab_id: int,
    headers: dict[str, str],
) -> None:
    """The cold start again with the Docker executor (JupyterLab in a container) vs the
    same container started by hand, when a Docker Engine and the session test image are
    there."""
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
        by_hand = docker_direct_start(tmp, settings, image)
        cold = proxied_start(base, lab_id, headers)
        print(
            f"cold start (Docker): {cold:.2f} s through Labyard vs {by_hand:.2f} s for the "
            f"same container by hand (x{cold / by_hand:.2f})"
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
