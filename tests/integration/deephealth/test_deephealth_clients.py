"""DeepHealth clients an administrator registers: the admin page's section and its /api/v1
twin, the token endpoint taking ids of the setting or the table, and a removed client's
logins refused (`401 invalid_client`). Bad inputs are refused next to the control, and
nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from labyard.auth.models import User
from labyard.deephealth.models import DeepHealthClient
from tests.factories import PASSWORD, access_token_for, auth, session_client
from tests.integration.deephealth.conftest import CLIENT_ID, DeepHealthWorld

API = "/api/v1/admin/deephealth-clients"


def _login(dh: DeepHealthWorld, client_id: str) -> Any:
    body = {"grant_type": "password", "username": "dhtest", "password": PASSWORD}
    return dh.http.post("/backend/auth/token/", data={**body, "client_id": client_id})


def _admin(dh: DeepHealthWorld) -> User:
    with dh.database.session() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
    assert admin is not None
    return admin


def _rows(dh: DeepHealthWorld) -> list[str]:
    with dh.database.session() as db:
        return list(db.scalars(select(DeepHealthClient.client_id).order_by(DeepHealthClient.id)))


def test_api_registers_lists_and_removes_clients(dh: DeepHealthWorld) -> None:
    headers = auth(access_token_for(dh.app, dh.database, _admin(dh)))
    assert _login(dh, "lab-frontend").json() == {"error": "invalid_client"}
    made = dh.http.post(API, json={"client_id": "lab-frontend", "name": "Lab UI"}, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "admin" and made.json()["name"] == "Lab UI"
    [listed] = dh.http.get(API, headers=headers).json()
    assert listed["client_id"] == "lab-frontend" and listed["created_at"]
    assert _login(dh, "lab-frontend").status_code == 200  # the table's id logs in
    assert _login(dh, CLIENT_ID).status_code == 200  # and the setting's still does
    # a user (not admin) neither lists nor adds; a non-admin token is refused
    theirs = auth(access_token_for(dh.app, dh.database, dh.owner))
    assert dh.http.get(API, headers=theirs).status_code == 403
    assert dh.http.post(API, json={"client_id": "mine"}, headers=theirs).status_code == 403
    assert dh.http.delete(f"{API}/lab-frontend", headers=theirs).status_code == 403
    gone = dh.http.delete(f"{API}/lab-frontend", headers=headers)
    assert gone.status_code == 204
    assert _login(dh, "lab-frontend").json() == {"error": "invalid_client"}
    assert _login(dh, "lab-frontend").status_code == 401
    assert _rows(dh) == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"client_id": "has space"}, 422, "client_id"),
        ({"client_id": ""}, 422, "client_id"),
        ({"client_id": "x" * 101}, 422, "client_id"),
        ({"client_id": "ok-id", "name": "n" * 101}, 422, "name"),
        ({"client_id": CLIENT_ID}, 409, "client_id"),  # the setting has it
        ({"client_id": "taken"}, 409, "client_id"),  # the table has it
    ],
)
def test_bad_clients_are_refused_and_nothing_is_written(
    dh: DeepHealthWorld, body: dict[str, str], status: int, field: str
) -> None:
    headers = auth(access_token_for(dh.app, dh.database, _admin(dh)))
    assert dh.http.post(API, json={"client_id": "taken"}, headers=headers).status_code == 201
    refused = dh.http.post(API, json=body, headers=headers)
    assert refused.status_code == status, refused.text
    assert refused.json()["field"] == field
    assert _rows(dh) == ["taken"]
    # removing what the table lacks: 404; what the setting registers: 409 (change the setting)
    assert dh.http.delete(f"{API}/nope", headers=headers).status_code == 404
    assert dh.http.delete(f"{API}/{CLIENT_ID}", headers=headers).status_code == 409


def test_admin_page_adds_and_removes_with_errors_next_to_the_control(
    dh: DeepHealthWorld,
) -> None:
    with session_client(dh.app, dh.database, _admin(dh)) as page:
        shown = page.get("/admin").text
        assert 'id="deephealth-clients"' in shown and CLIENT_ID in shown  # the setting's ids
        added = page.hx("POST", "/admin/deephealth-clients", data={"client_id": "page-ui"})
        assert added.status_code == 200 and "<code>page-ui</code>" in added.text
        assert "admin" in added.text  # created by
        bad = page.hx("POST", "/admin/deephealth-clients", data={"client_id": "bad id!"})
        assert bad.status_code == 200 and 'id="client-id-error"' in bad.text
        assert "1 to 100 letters" in bad.text and 'value="bad id!"' in bad.text
        again = page.hx("POST", "/admin/deephealth-clients", data={"client_id": "page-ui"})
        assert 'id="client-id-error"' in again.text and "already registered" in again.text
        assert _rows(dh) == ["page-ui"]
        assert _login(dh, "page-ui").status_code == 200
        missing = page.hx("POST", "/admin/deephealth-clients/remove", data={"client_id": "nope"})
        assert 'id="client-remove-error"' in missing.text and "No DeepHealth client" in missing.text
        removed = page.hx("POST", "/admin/deephealth-clients/remove", data={"client_id": "page-ui"})
        assert removed.status_code == 200 and "No clients registered here." in removed.text
    assert _rows(dh) == []
    assert _login(dh, "page-ui").json() == {"error": "invalid_client"}
    with session_client(dh.app, dh.database, dh.owner) as page:  # not for users
        assert page.get("/admin").status_code == 403
        refused = page.hx("POST", "/admin/deephealth-clients", data={"client_id": "mine"})
        assert refused.status_code == 403
    assert _rows(dh) == []
