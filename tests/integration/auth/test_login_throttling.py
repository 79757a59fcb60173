"""Login throttling per account and per client address (small limits set for the test)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard.auth.models import LoginFailure
from labyard.config import Settings
from labyard.db import Database
from tests.factories import PASSWORD, WebClient, make_users_fast

ACCOUNT_LIMIT = 3
ADDRESS_LIMIT = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with small throttling limits."""
    return settings.model_copy(
        update={
            "login_max_failures": ACCOUNT_LIMIT,
            "login_max_failures_per_address": ADDRESS_LIMIT,
        }
    )


def _client(app: FastAPI, address: str) -> WebClient:
    return WebClient(app, client=(address, 40000))


def test_account_is_throttled_on_page_and_api(app: FastAPI, database: Database) -> None:
    make_users_fast(database, "ana")
    with _client(app, "10.0.0.1") as one, _client(app, "10.0.0.2") as two:
        for _ in range(ACCOUNT_LIMIT):
            assert one.login("ana", "wrong password").status_code == 401
        # the account is locked whatever the address and even with the right password
        page = two.login("ana", PASSWORD)
        assert page.status_code == 429
        assert "Too many failed logins for this account" in page.text
        api = two.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "ana", "password": PASSWORD},
        )
        assert api.status_code == 429
        assert api.json()["error"] == "invalid_grant"
        assert int(api.headers["retry-after"]) > 0
        assert "labyard_session" not in two.cookies
        # other accounts from that address are not affected
        make_users_fast(database, "bob")
        assert two.login("bob", PASSWORD).status_code == 303


def test_address_is_throttled_across_usernames(app: FastAPI, database: Database) -> None:
    make_users_fast(database, "ana")
    with _client(app, "10.0.0.9") as attacker, _client(app, "10.0.0.10") as other:
        for n in range(ADDRESS_LIMIT):
            assert attacker.login(f"guess{n}", "wrong password").status_code == 401
        blocked = attacker.login("ana", PASSWORD)
        assert blocked.status_code == 429
        assert "Too many failed logins for this address" in blocked.text
        api = attacker.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "ana", "password": PASSWORD},
        )
        assert api.status_code == 429
        # the account itself is fine from another address
        assert other.login("ana", PASSWORD).status_code == 303


def test_success_clears_the_account_counter(app: FastAPI, database: Database) -> None:
    make_users_fast(database, "ana")
    with _client(app, "10.0.0.20") as client:
        for _ in range(ACCOUNT_LIMIT - 1):
            assert client.login("ana", "wrong password").status_code == 401
        assert client.login("ana", PASSWORD).status_code == 303
    with database.session() as db:
        keys = set(db.scalars(select(LoginFailure.key)))
    assert "user:ana" not in keys and "addr:10.0.0.20" in keys


def test_throttling_answer_in_the_api_has_retry_after(app: FastAPI, database: Database) -> None:
    make_users_fast(database, "ana")
    with _client(app, "10.0.0.30") as client:
        for _ in range(ACCOUNT_LIMIT):
            response = client.post(
                "/api/v1/auth/token",
                data={"grant_type": "password", "username": "ana", "password": "wrong"},
            )
            assert response.status_code == 400
        response = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "ana", "password": PASSWORD},
        )
        assert response.status_code == 429
        assert response.headers["retry-after"].isdigit()
