"""A real JupyterLab behind the proxy: the contents API, a kernel over its websocket that
writes into the lab's folder (found through the lab's Files API), a terminal's websocket,
files saved in JupyterLab in the code snapshot of a job submitted from the lab,
the sandboxed browser link, and refusals for everyone who may not use the session."""

from __future__ import annotations

import json
import re

import pytest
from starlette.websockets import WebSocketDisconnect

from labyard.jobs import service as jobs_service
from labyard.sessions import proxy
from tests.factories import session_client
from tests.integration.sessions.conftest import SessionWorld
from tests.integration.sessions.jupyter_client import execute, terminal_output

NOTEBOOK = {
    "type": "notebook",
    "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
}


def test_jupyterlab_through_the_proxy(world: SessionWorld) -> None:
    writer = world.api("write")
    assert writer.post(f"/api/v1/labs/{world.lab_id}/session").status_code == 200
    world.running(writer)
    base = f"/labs/{world.lab_id}/session"

    # a notebook made through Jupyter's contents API is a file of the lab
    made = writer.put(f"{base}/api/contents/explore.ipynb", json=NOTEBOOK)
    assert made.status_code == 201, made.text
    files = writer.get(f"/api/v1/labs/{world.lab_id}/files").json()
    names = [entry["name"] for entry in files["entries"]]
    assert "explore.ipynb" in names and "mlsteam.yml" in names

    # code run on a kernel over the proxied websocket writes into the lab's folder
    kernel = writer.post(f"{base}/api/kernels", json={"name": "python3"})
    assert kernel.status_code == 201, kernel.text
    channels = f"{base}/api/kernels/{kernel.json()['id']}/channels"
    with writer.websocket_connect(channels) as ws:
        status, printed = execute(
            ws,
            "import os\nopen('from_kernel.txt', 'w').write('written by the kernel')\n"
            "print(os.environ['CUDA_VISIBLE_DEVICES'], os.getcwd())",
        )
    assert status == "ok"
    lab_folder = world.settings.data_dir / "labs" / str(world.lab_id)
    assert printed.split() == ["0", str(lab_folder)]
    content = writer.get(
        f"/api/v1/labs/{world.lab_id}/files/content", params={"path": "from_kernel.txt"}
    )
    assert content.status_code == 200 and content.json()["content"] == "written by the kernel"

    # a terminal echoes a command's output over its websocket
    terminal = writer.post(f"{base}/api/terminals")
    assert terminal.status_code == 200, terminal.text
    with writer.websocket_connect(f"{base}/terminals/websocket/{terminal.json()['name']}") as ws:
        seen = terminal_output(ws, "echo $((6*7))-from-the-terminal; pwd", "42-from-the-terminal")
    assert "42-from-the-terminal" in seen

    # "Submit Job" snapshots what JupyterLab saved (a sweep of the lab through the API)
    script = {"type": "file", "format": "text", "content": "print('saved in JupyterLab')\n"}
    assert writer.put(f"{base}/api/contents/saved.py", json=script).status_code == 201
    sweep = writer.post(f"/api/v1/labs/{world.lab_id}/sweeps", json={"flavor": "tiny"})
    assert sweep.status_code == 201, sweep.text
    snapshot = jobs_service.job_dir(world.settings, sweep.json()["jobs"][0]["id"]) / "lab"
    assert (snapshot / "saved.py").read_text() == "print('saved in JupyterLab')\n"
    assert (snapshot / "explore.ipynb").is_file() and (snapshot / "from_kernel.txt").is_file()


def test_who_may_not_use_it_is_refused(world: SessionWorld) -> None:
    writer = world.api("write")
    writer.post(f"/api/v1/labs/{world.lab_id}/session")
    world.running(writer)
    base = f"/labs/{world.lab_id}/session"
    kernel_id = writer.post(f"{base}/api/kernels", json={"name": "python3"}).json()["id"]
    for name, status in (("read", 404), ("stranger", 404), ("anonymous", 303)):
        client = world.api(name)
        refused = client.get(f"{base}/api/contents")
        assert refused.status_code == status, name
        if name == "anonymous":  # outside /api/v1: sent to log in
            assert refused.headers["location"].startswith("/login")
        assert client.put(f"{base}/api/contents/x.ipynb", json=NOTEBOOK).status_code == status
        for url in (f"{base}/api/kernels/{kernel_id}/channels", f"{base}/terminals/websocket/1"):
            with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url):
                pass
            assert refused.value.code == 1008, name
    assert not (world.settings.data_dir / "labs" / str(world.lab_id) / "x.ipynb").exists()
    # the admin may (admins may do everything); a lab that is not running answers 404
    assert world.api("boss").get(f"{base}/api/contents").status_code == 200
    assert writer.get("/labs/999999/session/api/contents").status_code == 404


def test_the_browser_gets_a_sandboxed_link(world: SessionWorld) -> None:
    writer_api = world.api("write")
    writer_api.post(f"/api/v1/labs/{world.lab_id}/session")
    world.running(writer_api)
    base = f"/labs/{world.lab_id}/session"
    with session_client(world.app, world.database, world.users["write"]) as browser:
        # the JupyterLab page frames a fresh link, sandboxed without same-origin
        page = browser.get(f"/labs/{world.lab_id}/jupyter")
        assert page.status_code == 200
        assert (
            f'sandbox="{proxy.SANDBOX}"' in page.text and "allow-same-origin" not in proxy.SANDBOX
        )
        # a browser opening JupyterLab on the plain prefix is sent to a link
        moved = browser.get(f"{base}/lab", headers={"accept": "text/html"})
        assert moved.status_code == 307
        link = moved.headers["location"]
        assert link.startswith(f"{base}/~") and link.endswith("/lab")
        prefix = link[: -len("lab")]
        lab = browser.get(link, headers={"accept": "text/html"})
        assert lab.status_code == 200
        csp = lab.headers["content-security-policy"]
        assert csp.startswith("sandbox allow-scripts") and "allow-same-origin" not in csp
        config = re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab.text, re.S)
        assert (
            config is not None and json.loads(config[1])["baseUrl"] == prefix
        )  # JupyterLab's own requests use the link
        assert '<script src="/static/js/tensorboard_sandbox.js"></script>' in lab.text
        # the sandboxed page's requests come from origin null, without cookies
        browser.cookies.clear()
        api = browser.get(f"{prefix}api/contents", headers={"origin": "null"})
        assert api.status_code == 200 and api.headers["access-control-allow-origin"] == "null"
        preflight = browser.options(
            f"{prefix}api/contents/a.ipynb",
            headers={"origin": "null", "access-control-request-method": "PUT"},
        )
        assert preflight.status_code == 204
        # a forged or foreign token is refused; so is a cross-site request
        assert browser.get(f"{base}/~forged/api/contents").status_code == 401
        evil = browser.get(f"{prefix}api/contents", headers={"origin": "https://evil.example"})
        assert evil.status_code == 403
    # the link died with the login: the reader's link to another lab's session opens nothing
    with session_client(world.app, world.database, world.users["read"]) as reader:
        assert reader.get(f"/labs/{world.lab_id}/jupyter").status_code == 404
        assert reader.get(f"{base}/lab", headers={"accept": "text/html"}).status_code == 404
