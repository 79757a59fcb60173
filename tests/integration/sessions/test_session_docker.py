"""A session in a Docker container (JupyterLab in the job image): the lab's folder at
/mlsteam/lab is the lab's own, datasets are read-only under /mlsteam/input, the output is
writable, there is no network, and JupyterLab is reached through its socket by the proxy;
other users and anonymous requests are refused (HTTP and websockets), and after `kill -9` of
the server the restarted one adopts the container and proxies it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.websockets import WebSocketDisconnect

from labyard.auth.models import User
from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from labyard.flavors.models import Flavor
from labyard.jobs.executors.docker import LABEL_INSTANCE, instance_id
from labyard.jobs.scheduler import Scheduler
from labyard.labs import service as labs_service
from tests import services
from tests.factories import make_dataset
from tests.integration.sessions.conftest import ONE_GPU, Server, SessionWorld, kill9_then_adopt
from tests.integration.sessions.docker_image import ensure_session_image
from tests.integration.sessions.jupyter_client import execute, terminal_output
from tests.integration.sessions.test_session_proxy import NOTEBOOK

pytestmark = pytest.mark.docker

PROBE = """\
import os
open('from_container.txt', 'w').write('written in the container')
print('CWD', os.getcwd(), 'HOME', os.environ['HOME'])
print('DATA', open('/mlsteam/input/pics/hello.txt').read())
try:
    open('/mlsteam/input/pics/x', 'w')
    print('DATASET WRITABLE')
except OSError as exc:
    print('DATASET READONLY', exc.errno)
open('/mlsteam/output/out.txt', 'w').write('hi')
print('NET', sorted(os.listdir('/sys/class/net')))
"""


@pytest.fixture
def docker_world(world: SessionWorld) -> Iterator[SessionWorld]:
    """The world with the Docker executor (no network) and the JupyterLab image."""
    client = services.require(services.docker_client)
    image = services.require(ensure_session_image)
    world.settings.executor = "docker"
    world.settings.docker_network = "none"
    world.settings.docker_image = image
    world.scheduler = Scheduler(world.settings, world.database, inventory=ONE_GPU)
    with world.database.session() as db:  # JupyterLab needs more than the tiny flavor's 64 MiB
        db.add(Flavor(name="nb", gpus=0, cpus=1.0, memory_mb=1024, description="notebooks"))
    yield world
    label = f"{LABEL_INSTANCE}={instance_id(world.settings)}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)


def test_jupyterlab_in_a_container_through_the_proxy(docker_world: SessionWorld) -> None:
    world = docker_world
    dataset_id = make_dataset(
        world.database, world.settings, world.users["own"], world.project_id, "pics"
    )
    with world.database.session() as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        (datasets_service.dataset_dir(world.settings, dataset) / "hello.txt").write_text("hello")
        owner = db.get(User, world.users["own"].id)
        assert owner is not None
        labs_service.attach_dataset(db, owner, world.lab_id, dataset_id=dataset_id)
    writer = world.api("write")
    started = writer.post(f"/api/v1/labs/{world.lab_id}/session", json={"flavor": "nb"})
    assert started.status_code == 200, started.text
    world.running(writer)
    base = f"/labs/{world.lab_id}/session"
    assert writer.put(f"{base}/api/contents/in-docker.ipynb", json=NOTEBOOK).status_code == 201
    kernel = writer.post(f"{base}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    with writer.websocket_connect(f"{base}/api/kernels/{kernel.json()['id']}/channels") as ws:
        status, printed = execute(ws, PROBE)
    assert status == "ok", printed
    assert "CWD /mlsteam/lab HOME /mlsteam" in printed and "DATA hello" in printed
    assert "DATASET READONLY 30" in printed and "NET ['lo']" in printed
    names = [e["name"] for e in writer.get(f"/api/v1/labs/{world.lab_id}/files").json()["entries"]]
    assert {"in-docker.ipynb", "from_container.txt"} <= set(names)
    terminal = writer.post(f"{base}/api/terminals").json()["name"]
    with writer.websocket_connect(f"{base}/terminals/websocket/{terminal}") as ws:
        assert "6-in-docker" in terminal_output(ws, "echo $((2*3))-in-docker", "6-in-docker")
    # who may not use the session is refused over HTTP and on every websocket upgrade
    kernel_ws = f"{base}/api/kernels/{kernel.json()['id']}/channels"
    for name, status in (("read", 404), ("stranger", 404), ("anonymous", 303)):
        client = world.api(name)
        assert client.get(f"{base}/api/contents").status_code == status, name
        for url in (kernel_ws, f"{base}/terminals/websocket/{terminal}"):
            with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url):
                pass
            assert refused.value.code == 1008, name
    writer.delete(f"/api/v1/labs/{world.lab_id}/session")
    assert (
        world.tick_until(writer, lambda b: b["state"] == "stopped")["reason"] == "stopped by write"
    )


@pytest.mark.slow
def test_kill9_of_the_server_then_the_container_is_adopted_and_proxied(
    docker_world: SessionWorld, server: Server
) -> None:
    container = kill9_then_adopt(docker_world, server, flavor="nb")
    instance = instance_id(docker_world.settings)
    assert container.startswith(f"labyard-{instance}-job-")  # it ran in this one's container
