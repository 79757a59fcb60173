"""TensorBoard proxy requests never wait for the database's write lock: while another
connection holds it (SQLite: BEGIN IMMEDIATE; PostgreSQL: the instance's row locked FOR
UPDATE), a proxied GET still answers, and its last-access note is written once the lock goes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from labyard.db import utcnow
from labyard.tensorboard import service
from labyard.tensorboard.models import TensorBoardInstance
from labyard.web.deps import SESSION_COOKIE
from tests.factories import access_token_for, auth, session_client
from tests.serving import serve_in_thread

# a guard so a regression fails instead of hanging (not a speed assertion: SQLite's own
# busy timeout is 30 s and PostgreSQL would wait forever)
GUARD_S = 20.0


def test_proxied_get_answers_while_another_writer_holds_the_lock(tb: Any) -> None:
    browser = session_client(tb.app, tb.database, tb.owner)  # only its session cookie
    cookie = browser.cookies[SESSION_COOKIE]
    browser.close()
    bearer = auth(access_token_for(tb.app, tb.database, tb.owner))
    with (
        serve_in_thread(tb.app) as base,
        httpx.Client(base_url=base, headers=bearer, timeout=GUARD_S) as api,
        httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=GUARD_S) as http,
    ):
        tb_id = api.post("/api/v1/tensorboards", json={"job_ids": [tb.job_id]}).json()["id"]
        tb.wait_ready(api, tb_id)
        old = utcnow() - timedelta(minutes=5)
        with tb.database.session() as db:  # the last-access note is due
            row = db.get(TensorBoardInstance, tb_id)
            assert row is not None
            row.last_access_at = old

        with tb.database.session() as writer:  # holds the write lock until the block ends
            writer.execute(
                select(TensorBoardInstance.id)
                .where(TensorBoardInstance.id == tb_id)
                .with_for_update()
            )
            for path in ("data/runs", "data/plugin/scalars/tags", ""):
                response = http.get(f"/tensorboard/{tb_id}/{path}", follow_redirects=True)
                assert response.status_code == 200, (path, response.text[:300])
        # the note waited for the lock instead of the request: it lands once the lock is gone
        service.flush_access_notes()
        assert tb.instance(tb_id).last_access_at > utcnow() - timedelta(minutes=1)
