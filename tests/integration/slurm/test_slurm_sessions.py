"""A lab session as a Slurm job: JupyterLab starts on the node Slurm chose, with the GPU Slurm
allocated, listens on a port of that node (its token required), and is proxied there: a
kernel writes into the lab's folder, a terminal answers, other users get 404, and stopping
the session cancels the Slurm job."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from labyard.flavors.models import Flavor
from labyard.jobs import service as jobs_service
from labyard.jobs.executors.slurmctl import RUNNING_STATES, WAITING_STATES
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from labyard.sessions import jupyter
from tests.integration.sessions.conftest import SessionWorld, world  # noqa: F401 - fixture
from tests.integration.sessions.jupyter_client import execute, terminal_output
from tests.integration.sessions.test_session_proxy import NOTEBOOK
from tests.serving import wait_until
from tests.slurm_cluster import SlurmCluster

PROBE = """\
import os, socket
open('from_the_node.txt', 'w').write(os.environ['SLURM_JOB_ID'])
print('GPUS', os.environ.get('CUDA_VISIBLE_DEVICES'), 'NODE', os.environ['SLURMD_NODENAME'])
print('CWD', os.getcwd())
"""


@pytest.fixture
def slurm_world(world: SessionWorld, cluster: SlurmCluster) -> Iterator[SessionWorld]:  # noqa: F811
    """The sessions' world with the Slurm executor on the test cluster."""
    world.settings.executor = "slurm"
    world.settings.slurm_conf = str(cluster.conf)
    world.settings.stop_grace_seconds = 3.0
    world.scheduler = Scheduler(world.settings, world.database)
    with world.database.session() as db:  # JupyterLab needs more than the tiny flavors
        db.add(Flavor(name="snb", gpus=1, cpus=1.0, memory_mb=1024, description="notebooks"))
    yield world


def test_session_runs_on_a_slurm_node_and_is_proxied_there(
    slurm_world: SessionWorld, cluster: SlurmCluster
) -> None:
    world = slurm_world  # noqa: F811
    writer = world.api("write")
    started = writer.post(f"/api/v1/labs/{world.lab_id}/session", json={"flavor": "snb"})
    assert started.status_code == 200, started.text
    body = world.running(writer)
    assert len(body["gpus"]) == 1
    with world.database.read_session() as db:
        job = db.get(Job, body["job_id"])
        assert job is not None and job.executor == "slurm" and job.external_id.isdigit()
        slurm_id = job.external_id
    folder = jobs_service.job_dir(world.settings, body["job_id"])
    address = json.loads((jupyter.run_dir(folder) / jupyter.ADDRESS_NAME).read_text())
    assert address["port"] > 0 and not jupyter.socket_path(folder).exists()
    # the node's port wants JupyterLab's token: without it nothing is served
    node = f"http://{address['host']}:{address['port']}/labs/{world.lab_id}/session"
    assert httpx.get(f"{node}/api/contents", trust_env=False).status_code == 403
    base = f"/labs/{world.lab_id}/session"
    assert writer.put(f"{base}/api/contents/on-slurm.ipynb", json=NOTEBOOK).status_code == 201
    kernel = writer.post(f"{base}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    with writer.websocket_connect(f"{base}/api/kernels/{kernel.json()['id']}/channels") as ws:
        status, printed = execute(ws, PROBE)
    assert status == "ok", printed
    assert f"GPUS {body['gpus'][0]} NODE lynode" in printed, printed
    names = [e["name"] for e in writer.get(f"/api/v1/labs/{world.lab_id}/files").json()["entries"]]
    assert {"on-slurm.ipynb", "from_the_node.txt"} <= set(names)
    terminal = writer.post(f"{base}/api/terminals").json()["name"]
    with writer.websocket_connect(f"{base}/terminals/websocket/{terminal}") as ws:
        assert "42-on-slurm" in terminal_output(ws, "echo $((6*7))-on-slurm", "42-on-slurm")
    for outsider in ("read", "stranger"):
        assert world.api(outsider).get(f"{base}/api/contents").status_code == 404
    anonymous = world.api("anonymous").get(f"{base}/api/contents", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    writer.delete(f"/api/v1/labs/{world.lab_id}/session")
    stopped = world.tick_until(writer, lambda b: b["state"] == "stopped")
    assert stopped["reason"] == "stopped by write"
    # the Slurm job is over too (squeue: ended, not running or waiting)
    squeue = ("squeue", "--noheader", "--states=all", f"--jobs={slurm_id}", "--format=%T")
    wait_until(
        lambda: cluster.command(*squeue).strip() not in (*RUNNING_STATES, *WAITING_STATES),
        "the session's Slurm job to end",
    )
