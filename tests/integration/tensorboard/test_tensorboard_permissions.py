"""Access follows the jobs' project on every TensorBoard route: pages, API, the proxy
(TensorBoard's page, static files, data, POSTs) and websocket handshakes under it.
Owner and READ member get TensorBoard; a stranger gets 404; anonymous gets the login."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from labyard.tensorboard import process
from tests.factories import WebClient, access_token_for, auth, session_client

POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def _routes(tb_id: int) -> list[str]:
    return [
        f"/tensorboards/{tb_id}",
        f"/tensorboards/{tb_id}/status",
        f"/tensorboard/{tb_id}",
        f"/tensorboard/{tb_id}/",
        f"/tensorboard/{tb_id}/index.js",
        f"/tensorboard/{tb_id}/font-roboto/roboto.html",
        f"/tensorboard/{tb_id}/data/runs",
        f"/tensorboard/{tb_id}/data/plugin/scalars/tags",
    ]


def _websocket_close_code(client: TestClient, url: str, **kwargs: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(url, **kwargs):
        pass
    return refused.value.code


def test_permission_matrix(tb: Any) -> None:
    with (
        session_client(tb.app, tb.database, tb.owner) as owner,
        session_client(tb.app, tb.database, tb.reader) as reader,
        session_client(tb.app, tb.database, tb.stranger) as stranger,
        WebClient(tb.app) as anonymous,
    ):
        tb_id = owner.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]}).json()["id"]
        tb.wait_ready(owner, tb_id)
        ws_url = f"/tensorboard/{tb_id}/socket"

        for member in (owner, reader):
            for url in _routes(tb_id):
                assert member.get(url).status_code in (200, 307), url
            # allowed through: TensorBoard itself has no websocket, so the relay gives up
            assert _websocket_close_code(member, ws_url) == TRY_AGAIN_LATER
        assert reader.get("/api/v1/tensorboards").json()[0]["id"] == tb_id

        for url in _routes(tb_id):
            response = stranger.get(url)
            assert response.status_code == 404, url
            assert "TensorBoard" not in response.text or "No such TensorBoard" in response.text
            login = anonymous.get(url)
            assert login.status_code == 303 and login.headers["location"].startswith("/login")
        assert (
            stranger.hx(
                "POST",
                f"/tensorboard/{tb_id}/data/plugin/scalars/scalars_multirun",
                data={"tag": tb.tag, "runs": tb.tb_run},
            ).status_code
            == 404
        )
        assert _websocket_close_code(stranger, ws_url) == POLICY_VIOLATION
        assert _websocket_close_code(anonymous, ws_url) == POLICY_VIOLATION
        assert stranger.get("/api/v1/tensorboards").json() == []
        assert stranger.get(f"/api/v1/tensorboards/{tb_id}").status_code == 404
        assert anonymous.get(f"/api/v1/tensorboards/{tb_id}").status_code == 401
        assert (
            anonymous.get(f"/tensorboard/{tb_id}/", headers={"HX-Request": "true"})
            .headers["HX-Redirect"]
            .startswith("/login")
        )

        # a stranger cannot open one for the job either, nor stop this one
        refused = stranger.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]})
        assert refused.status_code == 404
        assert stranger.hx("POST", f"/api/v1/tensorboards/{tb_id}/stop").status_code == 404
        assert stranger.hx("POST", f"/tensorboards/{tb_id}/stop").status_code == 404
        # a READ member opens (reuses) it, but may not stop what someone else started
        assert (
            reader.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]}).json()["id"]
            == tb_id
        )
        assert reader.hx("POST", f"/api/v1/tensorboards/{tb_id}/stop").status_code == 403
        assert f"/tensorboards/{tb_id}/stop" not in reader.get("/tensorboards").text

        # cross-site requests never reach TensorBoard, even with the owner's cookie
        evil = {"Origin": "https://evil.example"}
        post = owner.post(
            f"/tensorboard/{tb_id}/data/plugin/scalars/scalars_multirun",
            data={"tag": tb.tag, "runs": tb.tb_run},
            headers=evil,
        )
        assert post.status_code == 403
        assert _websocket_close_code(owner, ws_url, headers=evil) == POLICY_VIOLATION

        row = tb.instance(tb_id)
        assert process.is_alive(row.pid, row.process_started_at)


def test_bearer_tokens_reach_the_api_and_proxy(tb: Any) -> None:
    with TestClient(tb.app) as api:
        owner_h = auth(access_token_for(tb.app, tb.database, tb.owner))
        stranger_h = auth(access_token_for(tb.app, tb.database, tb.stranger))
        body = {"job_ids": [tb.job_id]}
        assert api.post("/api/v1/tensorboards", json=body, headers=stranger_h).status_code == 404
        assert api.post("/api/v1/tensorboards", json=body).status_code == 401
        tb_id = api.post("/api/v1/tensorboards", json=body, headers=owner_h).json()["id"]
        assert api.get(f"/tensorboard/{tb_id}/data/runs", headers=stranger_h).status_code == 404
        stopped = api.post(f"/api/v1/tensorboards/{tb_id}/stop", headers=owner_h)
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
