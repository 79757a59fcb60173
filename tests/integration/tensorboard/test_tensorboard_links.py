"""The sandboxed TensorBoard page's own requests: authorised by the link's token (no cookie
reaches an opaque origin), answered to origin `null` only, and checked on every request:
a forged or foreign token, another site, a revoked login or a revoked membership end it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.projects import service as project_service
from labyard.web.deps import SESSION_COOKIE, cookie_signer
from tests.factories import WebClient, session_client

NULL = {"Origin": "null"}
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
FRAME_SRC = re.compile(r'<iframe id="tb-frame" src="([^"]+)"')


def _link(client: WebClient, tb_id: int) -> str:
    page = client.get(f"/tensorboards/{tb_id}/status", headers={"HX-Request": "true"})
    match = FRAME_SRC.search(page.text)
    assert match, page.text
    return match.group(1)


def _ws_code(client: TestClient, url: str, **kwargs: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url, **kwargs):
        pass
    return closed.value.code


def test_link_serves_the_sandboxed_page_without_cookies(tb: Any) -> None:
    with (
        session_client(tb.app, tb.database, tb.owner) as owner,
        session_client(tb.app, tb.database, tb.reader) as reader,
        session_client(tb.app, tb.database, tb.stranger) as stranger,
        WebClient(tb.app) as frame,  # the sandboxed page: no Labyard cookie at all
    ):
        tb_id = owner.hx("POST", "/api/v1/tensorboards", json={"job_ids": [tb.job_id]}).json()["id"]
        tb.wait_ready(owner, tb_id)
        tb.wait_for_tag(owner, tb_id)
        link = _link(owner, tb_id)
        assert link.startswith(f"/tensorboard/{tb_id}/~") and link.endswith("/")

        index = frame.get(link, headers=NULL)
        assert index.status_code == 200 and "tensorboard" in index.text.lower()
        assert index.headers["access-control-allow-origin"] == "null"
        assert "access-control-allow-credentials" not in index.headers
        assert index.headers["referrer-policy"] == "no-referrer"
        assert index.headers["content-security-policy"].startswith("sandbox allow-scripts ")
        # TensorBoard's queries: a preflight (checked too), then a POST with no CSRF token
        preflight = frame.options(
            f"{link}data/plugin/scalars/scalars_multirun",
            headers=NULL
            | {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-a"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "null"
        scalars = frame.post(
            f"{link}data/plugin/scalars/scalars_multirun",
            data={"tag": tb.tag, "runs": tb.tb_run},
            headers=NULL,
        )
        assert scalars.status_code == 200 and len(scalars.json()[tb.tb_run]) == 5
        # no other origin is answered, even with a valid token
        evil = frame.post(
            f"{link}data/plugin/scalars/scalars_multirun",
            data={"tag": tb.tag, "runs": tb.tb_run},
            headers={"Origin": "https://evil.example"},
        )
        assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
        assert _ws_code(frame, f"{link}socket", headers=NULL) == TRY_AGAIN_LATER

        # a forged token, or one for another instance, is refused (and never reaches TB)
        forged = link.replace("/~", "/~x")
        for url in (forged, link.replace(f"/tensorboard/{tb_id}/", f"/tensorboard/{tb_id + 1}/")):
            refused = frame.get(f"{url}data/runs", headers=NULL)
            assert refused.status_code == 401, url
            assert refused.headers["access-control-allow-origin"] == "null"
            assert "reload" in refused.text or "not valid" in refused.text
        assert _ws_code(frame, f"{forged}socket", headers=NULL) == POLICY_VIOLATION
        # a stranger's page never gets a link
        assert stranger.get(f"/tensorboards/{tb_id}").status_code == 404

        # READ is checked on every request: a removed member's link stops at once
        reader_link = _link(reader, tb_id)
        assert frame.get(f"{reader_link}data/runs").status_code == 200
        with tb.database.session() as db:
            owner_row = db.get(User, tb.owner.id)
            assert owner_row is not None
            project_service.remove_member(db, owner_row, tb.project_id, member_id=tb.reader.id)
        assert frame.get(f"{reader_link}data/runs").status_code == 404

        # logging out ends the links of that login
        assert frame.get(f"{link}data/runs").status_code == 200
        sid = owner.cookies[SESSION_COOKIE]
        with tb.database.session() as db:
            auth_service.revoke_session(db, cookie_signer(tb.settings, "session").loads(sid))
        assert frame.get(f"{link}data/runs").status_code == 401
