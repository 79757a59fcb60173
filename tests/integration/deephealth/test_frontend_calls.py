"""The DeepHealth front-end's remaining calls: logout (revoke-token), its profile page
(PUT/DELETE /auth/user/), registration and password reset (refused: an administrator makes
accounts and sets passwords), /weightsStatus, single-image inference (Labyard's "try one
image" job), and the reads and refused writes its pages use. Bad inputs write nothing."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.deephealth.models import DeepHealthProfile
from labyard.jobs.models import Job
from labyard.weights.inference import uploads_dir
from tests.factories import make_job_row
from tests.integration.deephealth.conftest import CLIENT_ID, PASSWORD, DeepHealthWorld
from tests.integration.weights.conftest import fake_torch_zip, tiny_onnx

OWNER = [{"username": "dhtest", "permission": "OWN"}]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32  # enough for the upload check; no job runs here


class Caller:
    """dhtest's bearer calls to /backend (the one request pattern of these tests)."""

    def __init__(self, dh: DeepHealthWorld, username: str = "dhtest") -> None:
        self.dh, self.headers = dh, dh.login(username)

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        return self.dh.http.request(method, "/backend/" + path, json=body, headers=self.headers)


def test_logout_revokes_the_token_of_a_registered_client(dh: DeepHealthWorld) -> None:
    call = Caller(dh)
    token = call.headers["Authorization"].split()[1]
    assert call("GET", "auth/testUser/").json() == {"result": "ok"}
    unknown = dh.http.post("/backend/auth/revoke-token/", data={"token": token})
    assert unknown.status_code == 401 and unknown.json() == {"error": "invalid_client"}
    assert call("GET", "auth/testUser/").status_code == 200  # still live
    done = dh.http.post("/backend/auth/revoke-token", data={"token": token, "client_id": CLIENT_ID})
    assert done.status_code == 204 and done.content == b""
    ended = call("GET", "auth/testUser/")
    assert ended.status_code == 401
    assert ended.json() == {"detail": "Invalid token header. No credentials provided."}
    for nonsense in ("nonsense", "\ud800"):  # an unknown or ended token: 204 too (RFC 7009)
        again = dh.http.post(
            "/backend/auth/revoke-token/",
            content=json.dumps({"token": nonsense, "client_id": CLIENT_ID}),
            headers={"content-type": "application/json"},
        )
        assert again.status_code == 204


def grant(dh: DeepHealthWorld, fields: dict[str, str]) -> Any:
    """The token endpoint's answer to the front-end's form (its client id added)."""
    return dh.http.post("/backend/auth/token/", data={**fields, "client_id": CLIENT_ID})


def test_revoking_a_refresh_token_ends_its_grant_and_nothing_else(dh: DeepHealthWorld) -> None:
    login = {"grant_type": "password", "username": "dhtest", "password": PASSWORD}
    first, second = grant(dh, login).json(), grant(dh, login).json()

    def works(access: str) -> bool:
        headers = {"Authorization": f"Bearer {access}"}
        return dh.http.get("/backend/auth/testUser/", headers=headers).status_code == 200

    with dh.database.session() as db:
        user = db.get(User, dh.owner.id)
        assert user is not None
        personal, _ = auth_service.create_personal_token(db, user, name="script")
    for token in (first["refresh_token"], personal):
        ended = dh.http.post(
            "/backend/auth/revoke-token/", data={"token": token, "client_id": CLIENT_ID}
        )
        assert ended.status_code == 204 and ended.content == b""
    refreshed = grant(dh, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    assert not works(first["access_token"])  # the access token of the same grant ended too
    assert works(second["access_token"]) and works(personal)  # another grant, a script's
    renewed = grant(dh, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert renewed.status_code == 200 and works(renewed.json()["access_token"])


def test_profile_page_updates_the_user_and_refuses_what_labyard_leaves_to_admins(
    dh: DeepHealthWorld,
) -> None:
    call = Caller(dh)
    profile = {"username": "dhtest", "email": "dh@example.org", "first_name": "D", "last_name": "H"}
    updated = call("PUT", "auth/user/", profile)
    assert updated.status_code == 200 and updated.reason_phrase == "OK"
    assert updated.json() == profile
    assert call("GET", "auth/user/").json() == {"id": dh.owner.id, **profile}
    me = call("GET", f"auth/users/{dh.owner.id}/").json()
    assert me["email"] == "dh@example.org" and me in call("GET", "auth/users/").json()
    for body, field in (
        ({**profile, "username": "renamed"}, "username"),
        ({**profile, "email": "not-an-address"}, "email"),
        ({**profile, "first_name": "x" * 151}, "first_name"),
    ):
        refused = call("PUT", "auth/user/", body)
        assert refused.status_code == 400 and field in refused.json(), refused.text
    assert call("GET", "auth/user/").json()["email"] == "dh@example.org"  # unchanged
    assert call("GET", "auth/users/999999/").status_code == 404
    deleted = call("DELETE", "auth/user/")
    assert deleted.status_code == 403 and "administrator" in deleted.json()["Error"]
    assert call("GET", "auth/testUser/").status_code == 200  # the account stays
    anonymous = {"username": "new", "email": "n@example.org", "password": "long password 1"}
    for path, body in (
        ("auth/user/", anonymous),
        ("auth/password_reset/", {"email": "dh@example.org"}),
        ("auth/password_reset/confirm/", {"password": "x", "token": "t"}),
        ("auth/password_reset/validate_token/", {"token": "t"}),
    ):
        refused = dh.http.post("/backend/" + path, json=body)
        assert refused.status_code == 403 and "administrator" in refused.json()["Error"], path
    assert dh.count(DeepHealthProfile) == 1


def test_reads_and_refused_writes_of_the_front_end(dh: DeepHealthWorld) -> None:
    call = Caller(dh)
    prop = call("GET", "properties/3").json()
    assert prop["name"] == "Epochs" and prop["type"] == "INT"
    assert call("GET", "properties/999").status_code == 404
    digits = next(d for d in call("GET", "datasets?task_id=1").json() if d["name"] == "digits")
    assert call("GET", f"datasets/{digits['id']}").json() == digits
    # public datasets are nobody's to delete here (403), an unknown one is not found
    assert call("DELETE", f"datasets/{digits['id']}").status_code == 403
    assert call("GET", "datasets/999999").status_code == 404
    assert call("GET", "weightsStatus").json() == {
        "Error": "Missing required parameter `process_id`"
    }
    waiting = call("GET", "weightsStatus?process_id=62a10034-1f2f-44b9-9014-71a1992647be")
    assert waiting.status_code == 404
    assert waiting.json() == {"result": "Process stopped before finishing or non existing."}
    for method, path, body in (
        ("PUT", "weights/1000001", {"name": "x", "model_id": 1, "users": OWNER}),
        ("POST", "weights/", {"name": "x", "model_id": 1, "onnx_url": "http://x/y.onnx"}),
        ("POST", "datasets", {"name": "d", "task_id": 1, "path": "/x.yml", "users": OWNER}),
        ("POST", "allowedProperties/", {"property_id": 3, "model_id": 1}),
        ("PUT", "allowedProperties/1", {"property_id": 3, "model_id": 1}),
    ):
        refused = call(method, path, body)
        assert refused.status_code == 403 and refused.json()["Error"], (method, path)


@pytest.fixture
def registered(dh: DeepHealthWorld) -> tuple[Caller, int, int]:
    """dhtest's project and LeNet weights registered in it (with the template's model.pt)."""
    call = Caller(dh)
    project = call("POST", "projects", {"name": "single", "task_id": 1, "users": OWNER}).json()
    classes = json.dumps({"classes": [str(n) for n in range(10)]}).encode()
    outputs = {
        "model.onnx": tiny_onnx(),
        "model.pt": fake_torch_zip(),
        "confusion_matrix.json": classes,
    }
    job = make_job_row(
        dh.database, dh.settings, project["id"], outputs=outputs, params={"network": "lenet"}
    )
    made = dh.http.post(
        "/api/v1/weights",
        json={"job_id": job, "name": "lenet-pt", "path": "model.pt"},
        headers=call.headers,
    )
    assert made.status_code == 201, made.text
    return call, project["id"], made.json()["id"]


def _jobs(dh: DeepHealthWorld) -> list[Job]:
    with dh.database.session() as db:
        return list(db.query(Job).order_by(Job.id))


def test_single_image_inference_queues_a_try_one_image_job(
    dh: DeepHealthWorld, registered: tuple[Caller, int, int]
) -> None:
    call, project, weights_id = registered
    image = "data:image/png;base64," + base64.b64encode(PNG).decode()
    body = {"modelweights_id": weights_id, "project_id": project, "image_url": None}
    started = call("POST", "inferenceSingle", {**body, "image_data": image})
    assert started.status_code == 201 and started.reason_phrase == "Created", started.text
    pid = started.json()["process_id"]
    assert started.json()["result"] == "ok" and started.json()["created"]
    [listed] = call("GET", f"inferenceSingle?project_id={project}").json()
    assert listed["celery_id"] == pid and listed["modelweights_id"] == weights_id
    status = call("GET", f"status?process_id={pid}").json()["status"]
    assert (status["process_type"], status["process_status"]) == ("inference", "PENDING")
    job = _jobs(dh)[-1]
    assert job.project_id == project and job.name.startswith("infer-lenet-pt")
    [upload] = [Path(d["host_path"]) for d in job.datasets if d["name"] == "upload"]
    assert upload.parent == uploads_dir(dh.settings).resolve()
    assert [p.read_bytes() for p in upload.iterdir()] == [PNG]


def test_bad_single_image_requests_write_nothing(
    dh: DeepHealthWorld, registered: tuple[Caller, int, int]
) -> None:
    call, project, weights_id = registered
    body = {"modelweights_id": weights_id, "project_id": project}
    pdf = "data:image/png;base64," + base64.b64encode(b"%PDF-1.4").decode()
    before = len(_jobs(dh))
    for extra, status, key, text in (
        ({}, 400, "non_field_errors", "At least one between"),
        ({"image_url": "https://example.org/x.png"}, 400, "Error", "no image URLs"),
        ({"image_data": "iVBORw0KGgo="}, 400, "Error", "data URL"),
        ({"image_data": "data:image/png;base64,@@@"}, 400, "Error", "base64"),
        ({"image_data": pdf}, 400, "Error", "Not an image"),
        ({"image_data": pdf, "modelweights_id": 1_000_001}, 400, "Error", "no trained weights"),
        ({"image_data": pdf, "project_id": 999999}, 400, "project_id", "Invalid pk"),
    ):
        refused = call("POST", "inferenceSingle", {**body, **extra})
        assert refused.status_code == status, (extra, refused.text)
        assert text in str(refused.json()[key]), (extra, refused.text)
    assert len(_jobs(dh)) == before
    uploads = uploads_dir(dh.settings)
    assert not uploads.exists() or not any(uploads.iterdir())
