"""Inference over several uploaded images (POST /api/v1/weights/{id}/inference/uploads, its
page twin on the weights page, `labyard infer WEIGHTS IMAGE...`): the job's predictions.csv
has one row per image under its (cleaned) file name and matches model.onnx run directly
with onnxruntime on the same files; every bad upload is refused naming the file, with
nothing kept under weights/.uploads and no job made."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.seed.digits import load_digits
from labyard.weights.uploads import MAX_UPLOAD_FILES, uploads_dir
from tests.factories import session_client
from tests.integration.weights.test_inference import (
    CLASSES,
    PNG,
    job_count,
    onnx_predictions,
    read_predictions,
    run_job,
    weights_id,  # noqa: F401 (a fixture)
)

URL = "/api/v1/weights/{}/inference/uploads"
# the client's file name -> the name the image is saved and predicted under
NAMES = {"zero.png": "zero.png", "my digit (1).PNG": "my digit (1).PNG", "two.dat": "two.png"}


def digit_pngs() -> list[bytes]:
    """One 8x8 digit image (scikit-learn's) of each class 0, 1 and 2 as PNG bytes."""
    images, labels = load_digits()
    found = []
    for digit in range(3):
        buffer = io.BytesIO()
        Image.fromarray(images[int(np.argmax(labels == digit))]).save(buffer, "PNG")
        found.append(buffer.getvalue())
    return found


def parts(*named: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart `files` parts of (file name, bytes)."""
    return [("files", (name, data, "image/png")) for name, data in named]


def nothing_kept(database: Database, settings: Settings, jobs_before: int) -> None:
    assert job_count(database) == jobs_before
    uploads = uploads_dir(settings)
    assert not uploads.exists() or not any(uploads.iterdir())


def test_uploaded_images_get_predictions_like_onnxruntime(
    app: FastAPI,
    database: Database,
    settings: Settings,
    people: dict[str, User],
    project: int,
    ana: Any,
    weights_id: int,  # noqa: F811
    tmp_path: Path,
) -> None:
    pngs = digit_pngs()
    answer = ana.post(
        URL.format(weights_id), files=parts(*zip(NAMES, pngs, strict=True)), data={"flavor": "cpu"}
    )
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["status"] == "queued" and job["flavor"] == "cpu" and job["project_id"] == project
    [upload] = list(uploads_dir(settings).iterdir())  # one folder holds them all
    assert sorted(p.name for p in upload.iterdir()) == sorted(NAMES.values())
    done = run_job(settings, database, job["id"])
    assert done.status == "succeeded", ana.get(f"/api/v1/jobs/{job['id']}/logs").text[-3000:]
    assert not upload.exists()  # removed when the job ended
    same = tmp_path / "same"  # the same files, run directly
    same.mkdir()
    for name, data in zip(NAMES.values(), pngs, strict=True):
        (same / name).write_bytes(data)
    onnx_file = Path(settings.data_dir) / "weights" / str(weights_id) / "model.onnx"
    expected = onnx_predictions(onnx_file, same)
    rows = read_predictions(settings, job["id"])
    assert sorted(r["path"] for r in rows) == sorted(NAMES.values()) == sorted(expected)
    for row in rows:
        klass, probs = expected[row["path"]]
        got = np.array([float(row[f"p_{c}"]) for c in CLASSES])
        assert np.allclose(got, probs, atol=1e-4), (row, probs)
        if np.sort(probs)[-1] - np.sort(probs)[-2] > 1e-4:  # a clear winner
            assert row["predicted_class"] == klass
    page = session_client(app, database, people["ana"])
    shown = page.get(f"/jobs/{job['id']}/view/predictions.csv").text  # the job page's viewer
    assert "viewer-table" in shown and "<td>my digit (1).PNG</td>" in shown


TINY = PNG + b"x"
HUGE = PNG + b"0" * (10 << 20)


BAD = [  # (files, what the 422's message says); each names the file at fault
    ([], "Choose at least one image"),
    ([("a.png", TINY), ("notes.txt", b"%PDF-1.4")], "or WebP): 'notes.txt'."),
    ([("a.png", TINY), ("b.png", b"")], "The image 'b.png' is empty"),
    ([("a.png", TINY), ("big.png", HUGE)], "The image 'big.png' is larger than 10 MiB"),
    ([("a.png", TINY), ("a.png", TINY)], "share the name 'a': 'a.png' and 'a.png'"),
    ([("a.jpg", TINY), ("A.png", TINY)], "share the name 'A': 'a.jpg' and 'A.png'"),
    ([("a.gif", TINY), ("a.png", TINY)], "'a.gif' and 'a.png'"),
    ([("a.png", TINY), ("../x.png", TINY)], "File name '../x.png' is refused"),
    ([("a.png", TINY), ("..\\x.png", TINY)], "'..\\\\x.png' is refused"),
    ([("a/b.png", TINY)], "'a/b.png' is refused"),
    ([(".x.png", TINY)], "'.x.png' is refused: names must not start with '.'"),
    ([(f"{n}.png", TINY) for n in range(MAX_UPLOAD_FILES + 1)], "At most 200 images"),
]


def test_bad_uploads_are_refused_naming_the_file_and_nothing_is_kept(
    database: Database,
    settings: Settings,
    ana: Any,
    weights_id: int,  # noqa: F811
) -> None:
    before = job_count(database)
    for files, message in BAD:
        answer = ana.post(URL.format(weights_id), files=parts(*files), data={"flavor": "cpu"})
        assert answer.status_code == 422, (message, answer.text)
        assert message in answer.json()["detail"] and answer.json()["field"] == "files", message
        nothing_kept(database, settings, before)


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("x\x00.png", TINY, "'x\\x00.png' is refused"),  # what httpx would not send
        ("", b"", "Choose at least one image"),  # a browser's file input with nothing chosen
    ],
)
def test_raw_parts_nul_names_and_an_empty_file_input(
    database: Database,
    settings: Settings,
    ana: Any,
    weights_id: int,  # noqa: F811
    filename: str,
    data: bytes,
    message: str,
) -> None:
    before = job_count(database)
    boundary = "b0undary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"'
    body = f"{head}\r\nContent-Type: image/png\r\n\r\n".encode() + data
    body += f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    answer = ana.post(URL.format(weights_id), content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"], answer.text
    nothing_kept(database, settings, before)


def test_total_size_is_capped_and_an_oversize_body_is_not_read(
    database: Database,
    settings: Settings,
    ana: Any,
    weights_id: int,  # noqa: F811
) -> None:
    settings.weights_upload_max_bytes = 4096  # the body guard allows it + 1 MiB of multipart
    before = job_count(database)
    three = [(f"{n}.png", PNG + b"0" * 2000) for n in range(3)]
    answer = ana.post(URL.format(weights_id), files=parts(*three))
    assert answer.status_code == 422 and "larger than 4 KiB together" in answer.text
    big = [(f"{n}.png", PNG + b"0" * (700 << 10)) for n in range(2)]
    answer = ana.post(URL.format(weights_id), files=parts(*big))
    assert answer.status_code == 413 and "larger than the limit" in answer.json()["detail"]
    nothing_kept(database, settings, before)


def test_a_refused_job_or_weights_keep_no_upload(
    database: Database,
    settings: Settings,
    ana: Any,
    eve: Any,
    weights_id: int,  # noqa: F811
) -> None:
    before = job_count(database)
    files = parts(("a.png", TINY))
    bad_flavor = ana.post(URL.format(weights_id), files=files, data={"flavor": "nope"})
    assert bad_flavor.status_code == 422 and bad_flavor.json()["field"] == "flavor"
    assert eve.post(URL.format(weights_id), files=files).status_code == 404  # not hers
    nothing_kept(database, settings, before)


def test_the_weights_page_form_runs_uploaded_images_and_shows_refusals_by_the_input(
    app: FastAPI,
    database: Database,
    settings: Settings,
    people: dict[str, User],
    weights_id: int,  # noqa: F811
) -> None:
    page = session_client(app, database, people["ana"])
    html = page.get(f"/weights/{weights_id}").text
    assert 'id="weights-uploads-form"' in html and 'name="files" multiple' in html
    url = f"/weights/{weights_id}/inference/uploads"
    sent = page.hx("POST", url, files=parts(("a.png", TINY), ("b.png", TINY)))
    assert sent.status_code == 204 and sent.headers["hx-redirect"].startswith("/jobs/")
    before = job_count(database)
    [folder] = list(uploads_dir(settings).iterdir())
    refused = page.hx("POST", url, files=parts(("a.png", TINY), ("../a.png", TINY)))
    assert refused.status_code == 422 and 'data-field="files"' in refused.text
    assert "File name &#39;../a.png&#39; is refused" in refused.text
    assert job_count(database) == before and list(uploads_dir(settings).iterdir()) == [folder]


def test_cli_infer_uploads_image_files(
    cli: Any,
    weights_id: int,  # noqa: F811
    tmp_path: Path,
) -> None:
    cli.login()
    images = []
    for name, data in zip(("zero.png", "one.png"), digit_pngs(), strict=False):
        (tmp_path / name).write_bytes(data)
        images.append(str(tmp_path / name))
    made = cli("infer", str(weights_id), *images, "--json")
    assert made.exit_code == 0, made.output
    job = json.loads(made.stdout)
    assert job["status"] == "queued" and job["name"].startswith("infer-digits3")
    (tmp_path / "notes.txt").write_text("hello")
    refused = cli("infer", str(weights_id), images[0], str(tmp_path / "notes.txt"))
    assert refused.exit_code == 1 and "Not an image" in refused.stderr
    assert "'notes.txt'" in refused.stderr
    neither = cli("infer", str(weights_id))
    assert neither.exit_code == 1 and "either --dataset" in neither.stderr
