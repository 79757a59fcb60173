"""The lab page's session panel: shown to WRITE members only, Start queues a session on the
chosen flavor and shows its queue position, Stop ends it, and the dataset note is there.
A dataset attached while a session runs reaches it at its next start (the panel's Restart),
and the page and the API say so."""

from __future__ import annotations

from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from tests.factories import WebClient, make_dataset, session_client
from tests.integration.sessions.conftest import SessionWorld
from tests.integration.sessions.jupyter_client import execute


def test_the_lab_page_panel_starts_and_stops_a_session(world: SessionWorld) -> None:
    panel = f"/labs/{world.lab_id}/jupyter/panel"
    with session_client(world.app, world.database, world.users["read"]) as reader:
        page = reader.get(f"/labs/{world.lab_id}/files")
        assert page.status_code == 200 and panel not in page.text
        assert reader.get(panel).status_code == 404
    with session_client(world.app, world.database, world.users["write"]) as writer:
        page = writer.get(f"/labs/{world.lab_id}/files")
        assert page.status_code == 200 and f'hx-get="{panel}"' in page.text
        empty = writer.get(panel)
        assert 'data-state="stopped"' in empty.text and ">Start</button>" in empty.text
        assert "takes effect at its next start" in empty.text
        refused = writer.hx("POST", f"/labs/{world.lab_id}/jupyter/start", data={"flavor": "nope"})
        assert refused.status_code == 422 and "No flavor" in refused.text
        started = writer.hx("POST", f"/labs/{world.lab_id}/jupyter/start", data={"flavor": "tiny"})
        assert started.status_code == 200, started.text
        assert 'data-state="queued"' in started.text and "position 1 in the queue" in started.text
        assert "flavor tiny" in started.text and ">Stop</button>" in started.text
        stopped = writer.hx("POST", f"/labs/{world.lab_id}/jupyter/stop")
        assert 'data-state="stopped"' in stopped.text
        assert "Stopped: stopped by write" in stopped.text
        # the JupyterLab page of a stopped session shows the panel, no frame
        jupyter = writer.get(f"/labs/{world.lab_id}/jupyter")
        assert jupyter.status_code == 200 and "session-frame" not in jupyter.text


READ_PICS = (
    "import os\n"
    "path = os.path.join(os.environ['MLSTEAM_INPUT_DIR'], 'pics', 'hello.txt')\n"
    "print(open(path).read() if os.path.exists(path) else 'NO PICS')"
)


def _kernel_prints(world: SessionWorld, client: WebClient, code: str) -> str:
    """What `code` prints on a new kernel of the lab's running session (through the proxy)."""
    base = f"/labs/{world.lab_id}/session"
    kernel = client.post(f"{base}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    with client.websocket_connect(f"{base}/api/kernels/{kernel.json()['id']}/channels") as ws:
        status, printed = execute(ws, code)
    assert status == "ok", printed
    return printed.strip()


def test_datasets_attached_during_a_session_arrive_with_restart(world: SessionWorld) -> None:
    dataset_id = make_dataset(
        world.database, world.settings, world.users["own"], world.project_id, "pics"
    )
    with world.database.session() as db:
        dataset = db.get(Dataset, dataset_id)
        assert dataset is not None
        (datasets_service.dataset_dir(world.settings, dataset) / "hello.txt").write_text("hello")
    writer = world.api("write")
    # with no session, attaching says nothing about one
    quiet = writer.put(f"/api/v1/labs/{world.lab_id}/datasets/{dataset_id}")
    assert quiet.status_code == 200 and quiet.json()["note"] == ""
    assert writer.delete(f"/api/v1/labs/{world.lab_id}/datasets/{dataset_id}").json()["note"] == ""
    first = writer.post(f"/api/v1/labs/{world.lab_id}/session").json()
    world.running(writer)
    assert _kernel_prints(world, writer, READ_PICS) == "NO PICS"

    # attaching (the API, then the page) says it takes effect at the next start
    attached = writer.put(f"/api/v1/labs/{world.lab_id}/datasets/{dataset_id}")
    assert (
        attached.status_code == 200 and "takes effect at its next start" in attached.json()["note"]
    )
    with session_client(world.app, world.database, world.users["write"]) as browser:
        detached = browser.hx("POST", f"/labs/{world.lab_id}/datasets/{dataset_id}/detach")
        assert detached.status_code == 200 and "takes effect at its next start" in detached.text
        again = browser.hx("POST", f"/labs/{world.lab_id}/datasets", data={"name": "pics"})
        assert again.status_code == 200 and 'data-dataset="pics"' in again.text
        assert "takes effect at its next start" in again.text
        assert _kernel_prints(world, writer, READ_PICS) == "NO PICS"  # the session kept its mounts

        # the panel's Restart stops this session and queues a fresh one with the dataset
        restarted = browser.hx("POST", f"/labs/{world.lab_id}/jupyter/restart")
        assert restarted.status_code == 200, restarted.text
        assert 'data-state="queued"' in restarted.text or 'data-state="starting"' in restarted.text
    second = world.running(writer)
    assert second["job_id"] != first["job_id"]
    assert _kernel_prints(world, writer, READ_PICS) == "hello"
