"""Opening a TensorBoard for a job: a real process, reached only through the proxy,
reused for the same log dirs, with TensorBoard's own CSP relaxed only under its prefix."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from labyard.db import utcnow
from labyard.tensorboard import process, service
from labyard.tensorboard.models import TensorBoardInstance
from labyard.web.headers import CONTENT_SECURITY_POLICY
from tests.factories import session_client

FRAME = re.compile(r'<iframe id="tb-frame" src="(?P<src>[^"]+)" sandbox="(?P<sandbox>[^"]*)"')


def test_open_proxy_scalars_reuse(tb: Any) -> None:
    run = tb.run
    with session_client(tb.app, tb.database, tb.owner) as owner:
        # the API answers the instance with its id and url
        response = owner.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]})
        assert response.status_code == 200, response.text
        body = response.json()
        tb_id = body["id"]
        assert body["url"] == f"/tensorboard/{tb_id}/"
        assert body["started_by"] == "owner"
        assert body["runs"] == [run]
        # no server path leaves the server (the runs are named, their folders are not)
        assert str(tb.settings.data_dir) not in response.text and "/jobs/" not in response.text
        row = tb.instance(tb_id)
        assert process.is_alive(row.pid, row.process_started_at)

        # the waiting page polls until TensorBoard answers, then frames it
        page = owner.get(f"/tensorboards/{tb_id}")
        assert page.status_code == 200
        assert "tb-status" in page.text
        tb.wait_ready(owner, tb_id)
        fragment = owner.get(f"/tensorboards/{tb_id}/status", headers={"HX-Request": "true"})
        # framed sandboxed, without same-origin, by a link of this browser session
        frame = FRAME.search(fragment.text)
        assert frame is not None, fragment.text
        assert frame["sandbox"] == "allow-scripts allow-popups allow-downloads"
        assert frame["src"].startswith(f"/tensorboard/{tb_id}/~")

        # TensorBoard's page, its static files and the job's scalars, all through the proxy;
        # a browser asking for its page on the plain prefix is sent to a fresh link
        moved = owner.get(f"/tensorboard/{tb_id}/")
        assert moved.status_code == 307
        assert moved.headers["location"].startswith(f"/tensorboard/{tb_id}/~")
        index = owner.get(moved.headers["location"])
        assert index.status_code == 200
        assert "<tb-webapp" in index.text or "tensorboard" in index.text.lower()
        csp = index.headers["content-security-policy"]
        assert csp.startswith("sandbox allow-scripts ") and "allow-same-origin" not in csp
        assert "'unsafe-inline'" in csp and "frame-ancestors 'self'" in csp
        assert index.headers["x-frame-options"] == "SAMEORIGIN"
        # the stand-ins for what an opaque origin lacks load before any TensorBoard script
        shim = '<script src="/static/js/tensorboard_sandbox.js"></script>'
        assert index.text.index(shim) < index.text.find("<script", index.text.index(shim) + 1)
        assert owner.get("/static/js/tensorboard_sandbox.js").status_code == 200
        # the plain prefix (bearer tokens, scripts) is sandboxed the same way
        plain = owner.get(f"/tensorboard/{tb_id}/data/runs")
        assert plain.headers["content-security-policy"] == csp
        assert owner.get(f"/tensorboard/{tb_id}/index.js").status_code == 200
        tb.wait_for_tag(owner, tb_id)
        # TensorBoard's read-only POST queries pass without Labyard's CSRF token
        scalars = owner.post(
            f"/tensorboard/{tb_id}/data/plugin/scalars/scalars_multirun",
            data={"tag": tb.tag, "runs": tb.tb_run},
        )
        assert scalars.status_code == 200, scalars.text
        assert len(scalars.json()[tb.tb_run]) == 5
        # without the trailing slash: redirected after the same check
        bare = owner.get(f"/tensorboard/{tb_id}")
        assert bare.status_code == 307 and bare.headers["location"] == f"/tensorboard/{tb_id}/"

        # Labyard's own pages keep the strict policy
        assert owner.get("/tensorboards").headers["content-security-policy"] == (
            CONTENT_SECURITY_POLICY
        )

        # the same log dirs again (page form, then API): the same process
        again = owner.hx("POST", "/tensorboards/open", data={"job_ids": str(tb.job_id)})
        assert again.status_code == 204
        assert again.headers["HX-Redirect"] == f"/tensorboards/{tb_id}"
        assert (
            owner.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]}).json()["id"]
            == tb_id
        )
        assert tb.count() == 1 and tb.instance(tb_id).pid == row.pid

        # listed with who started it and what it shows
        listing = owner.get("/tensorboards").text
        assert run in listing and "owner" in listing and f"/tensorboards/{tb_id}/stop" in listing
        assert [i["id"] for i in owner.get("/api/v1/tensorboards").json()] == [tb_id]


def test_last_access_noted_at_most_once_a_minute(tb: Any) -> None:
    with session_client(tb.app, tb.database, tb.owner) as owner:
        tb_id = owner.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]}).json()["id"]
        tb.wait_ready(owner, tb_id)

        recent = utcnow() - timedelta(seconds=30)
        _set_last_access(tb, tb_id, recent)
        assert owner.get(f"/tensorboard/{tb_id}/data/runs").status_code == 200
        service.flush_access_notes()
        assert tb.instance(tb_id).last_access_at == recent

        old = utcnow() - timedelta(minutes=5)
        _set_last_access(tb, tb_id, old)
        assert owner.get(f"/tensorboard/{tb_id}/data/runs").status_code == 200
        service.flush_access_notes()  # noted on a writer thread of its own
        assert tb.instance(tb_id).last_access_at > utcnow() - timedelta(minutes=1)


def _set_last_access(tb: Any, tb_id: int, when: object) -> None:
    with tb.database.session() as db:
        row = db.get(TensorBoardInstance, tb_id)
        assert row is not None
        row.last_access_at = when  # type: ignore[assignment]
