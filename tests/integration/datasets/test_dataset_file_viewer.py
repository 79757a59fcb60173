"""The file viewer on a dataset's files: small images scaled up pixelated, text and CSV
previews, a link leaving the dataset refused, outsiders refused."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image
from sqlalchemy import select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from tests.factories import WebClient, make_dataset, make_users_fast, session_client
from tests.integration.datasets.conftest import dataset_root


@pytest.fixture
def shelf(app: FastAPI, database: Database, settings: Settings) -> Iterator[tuple[int, Path]]:
    """ana's dataset with a 32x32 digit, a CSV and a text file; its id and folder."""
    users = make_users_fast(database, "ana", "olga")
    project_id = users["ana"].default_project_id
    assert project_id is not None
    dataset_id = make_dataset(database, settings, users["ana"], project_id, "digits32")
    root = dataset_root(settings, database, dataset_id)
    (root / "train" / "3").mkdir(parents=True)
    buffer = io.BytesIO()
    Image.new("L", (32, 32), 255).save(buffer, "PNG")
    (root / "train" / "3" / "a.png").write_bytes(buffer.getvalue())
    (root / "labels.csv").write_text("file,label\n<i>a.png</i>,3\n")
    (root / "notes.txt").write_text("one\ntwo\n")
    yield dataset_id, root


def _client(app: FastAPI, database: Database, name: str) -> WebClient:
    """A logged-in browser client of the user `name` (close it after use)."""
    with database.session() as db:
        user = db.scalars(select(User).where(User.username == name)).one()
        db.expunge(user)
    return session_client(app, database, user)


def test_small_image_scaled_up_pixelated(
    app: FastAPI, database: Database, shelf: tuple[int, Path]
) -> None:
    dataset_id, _ = shelf
    with _client(app, database, "ana") as web:
        page = web.get(f"/datasets/{dataset_id}/preview", params={"path": "train/3/a.png"}).text
        assert "/static/css/viewer.css" in page
        src = f"/api/v1/datasets/{dataset_id}/thumbnail?path=train%2F3%2Fa.png&amp;size=preview"
        assert f'<img src="{src}" alt="a.png" width="384" height="384" class="pixelated">' in page
        image = web.get(f"/api/v1/datasets/{dataset_id}/thumbnail?path=train/3/a.png&size=preview")
        assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (32, 32)


def test_csv_and_text_previews(app: FastAPI, database: Database, shelf: tuple[int, Path]) -> None:
    dataset_id, _ = shelf
    with _client(app, database, "ana") as web:
        table = web.get(f"/datasets/{dataset_id}/preview", params={"path": "labels.csv"}).text
        assert "<td>&lt;i&gt;a.png&lt;/i&gt;</td>" in table and "<i>a.png" not in table
        text = web.get(f"/datasets/{dataset_id}/preview", params={"path": "notes.txt"}).text
        assert '<td class="ln">2</td><td class="code">two</td>' in text
        assert f'href="/api/v1/datasets/{dataset_id}/download?path=notes.txt"' in text


def test_link_leaving_the_dataset_and_outsiders_refused(
    app: FastAPI, database: Database, shelf: tuple[int, Path], tmp_path: Path
) -> None:
    dataset_id, root = shelf
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (root / "leak.txt").symlink_to(secret)
    with _client(app, database, "ana") as web:
        for path in ("leak.txt", "../secret.txt", "../../etc/passwd"):
            refused = web.get(f"/datasets/{dataset_id}/preview", params={"path": path})
            assert refused.status_code == 404 and "TOP SECRET" not in refused.text, path
    with _client(app, database, "olga") as web:
        refused = web.get(f"/datasets/{dataset_id}/preview", params={"path": "notes.txt"})
        assert refused.status_code == 404 and "two" not in refused.text
    assert secret.read_text() == "TOP SECRET"
