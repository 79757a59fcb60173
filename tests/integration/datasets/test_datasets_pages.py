"""The datasets pages: list, detail with drop zone and insight, htmx file actions (escaped),
preview, create and delete; public datasets show no write controls."""

from __future__ import annotations

import re

from fastapi import FastAPI

from labyard.config import Settings
from labyard.db import Database
from tests.factories import make_dataset, make_users_fast, session_client


def test_pages_and_htmx_actions(app: FastAPI, database: Database, settings: Settings) -> None:
    users = make_users_fast(database, "ana")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    ds = make_dataset(database, settings, users["ana"], project_id, "d1")
    with session_client(app, database, users["ana"]) as client:
        listing = client.get("/datasets")
        assert listing.status_code == 200 and "d1" in listing.text and "digits" in listing.text
        detail = client.get(f"/datasets/{ds}")
        assert detail.status_code == 200 and 'id="dropzone"' in detail.text
        assert "Format not recognised" in detail.text
        made = client.hx("POST", f"/datasets/{ds}/folders", data={"name": "x<b>", "path": ""})
        assert made.status_code == 200 and "x&lt;b&gt;" in made.text and "x<b>" not in made.text
        renamed = client.hx(
            "POST", f"/datasets/{ds}/rename?path=x%3Cb%3E", headers={"HX-Prompt": "y"}
        )
        assert renamed.status_code == 200 and "y/" in renamed.text
        refused = client.hx("POST", f"/datasets/{ds}/rename?path=y", headers={"HX-Prompt": "../z"})
        assert refused.status_code == 422 and refused.headers["HX-Retarget"] == "#flash"
        digits = next(
            d["id"] for d in client.get("/api/v1/datasets").json() if d["name"] == "digits"
        )
        public = client.get(f"/datasets/{digits}?path=train/3")
        assert public.status_code == 200 and 'id="dropzone"' not in public.text
        assert "Rename" not in public.text
        match = re.search(r'preview\?path=([^"]+)"', public.text)
        assert match
        preview = client.get(f"/datasets/{digits}/preview?path={match.group(1)}")
        assert preview.status_code == 200 and "size=preview" in preview.text
        assert "Classification format: 10 classes" in client.get(f"/datasets/{digits}").text
        created = client.hx("POST", "/datasets", data={"name": "new1", "project_id": project_id})
        assert created.status_code == 204 and created.headers["HX-Redirect"].startswith(
            "/datasets/"
        )
        deleted = client.hx("POST", f"/datasets/{ds}/delete")
        assert deleted.status_code == 204 and deleted.headers["HX-Redirect"] == "/datasets"
        assert client.get(f"/datasets/{ds}").status_code == 404
