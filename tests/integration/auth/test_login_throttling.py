"""Login throttling per (account, address) and per address; account-wide only a delay, so
failures from elsewhere never lock the owner out (small limits set for the test)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from labyard.auth import service
from labyard.auth.models import LoginFailure
from labyard.config import Settings
from labyard.db import Database
from tests.factories import ADMIN_PASSWORD, PASSWORD, WebClient, make_users_fast

PAIR_LIMIT = 3
ADDRESS_LIMIT = 4
DELAY = 0.01


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with small throttling limits."""
    return settings.model_copy(
        update={
            "login_max_failures": PAIR_LIMIT,
            "login_max_failures_per_address": ADDRESS_LIMIT,
            "login_account_delay_seconds": DELAY,
        }
    )


def _client(app: FastAPI, address: str) -> WebClient:
    return WebClient(app, client=(address, 40000))


def _grant(client: WebClient, username: str, password: str):  # type: ignore[no-untyped-def]
    data = {"grant_type": "password", "username": username, "password": password}
    return client.post("/api/v1/auth/token", data=data)


def _delay(database: Database, settings: Settings, username: str, address: str) -> float:
    with database.read_session() as db:
        return service.login_delay(db, settings, username=username, address=address)


def test_failures_from_one_address_never_lock_out_the_owner_elsewhere(
    app: FastAPI, database: Database
) -> None:
    """The issue's case: wrong passwords for `admin` (a known name) from one address."""
    with (
        _client(app, "10.0.0.1") as attacker,
        _client(app, "10.0.0.2") as owner,
        _client(app, "10.0.0.2") as owner_script,
    ):
        for _ in range(PAIR_LIMIT):
            assert attacker.login("admin", "wrong password").status_code == 401
        blocked = attacker.login("admin", ADMIN_PASSWORD)
        assert blocked.status_code == 429
        assert "Too many failed logins for this account from your address" in blocked.text
        assert "labyard_session" not in attacker.cookies
        api = _grant(attacker, "admin", ADMIN_PASSWORD)
        assert api.status_code == 429 and api.json()["error"] == "invalid_grant"
        assert int(api.headers["retry-after"]) > 0
        # the owner, elsewhere, gets in on the page and in the API
        assert owner.login("admin", ADMIN_PASSWORD).status_code == 303
        assert _grant(owner_script, "admin", ADMIN_PASSWORD).status_code == 200
        # and the attacker's address may still log in to other accounts
        make_users_fast(database, "bob")
        assert attacker.login("bob", PASSWORD).status_code == 303


def test_address_is_throttled_across_usernames(app: FastAPI, database: Database) -> None:
    make_users_fast(database, "ana")
    with _client(app, "10.0.0.9") as attacker, _client(app, "10.0.0.10") as other:
        for n in range(ADDRESS_LIMIT):
            assert attacker.login(f"guess{n}", "wrong password").status_code == 401
        blocked = attacker.login("ana", PASSWORD)
        assert blocked.status_code == 429
        assert "Too many failed logins for your address" in blocked.text
        assert _grant(attacker, "ana", PASSWORD).status_code == 429
        assert other.login("ana", PASSWORD).status_code == 303


def test_guessing_from_many_addresses_slows_the_account_but_never_refuses_it(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    make_users_fast(database, "ana", "bob")
    assert _delay(database, settings, "ana", "10.1.0.99") == 0
    for n in range(PAIR_LIMIT):  # one failure from each of several addresses
        with _client(app, f"10.1.0.{n}") as attacker:
            assert attacker.login("ana", "wrong password").status_code == 401
    # every attempt on the account now waits, whichever address it comes from...
    assert _delay(database, settings, "ana", "10.1.0.99") == DELAY
    assert _delay(database, settings, "bob", "10.1.0.99") == 0  # other accounts do not
    # ...but the right password still gets in, from a new address too
    with _client(app, "10.1.0.99") as owner:
        assert owner.login("ana", PASSWORD).status_code == 303
        # and again from a browser already logged in (its CSRF check began a transaction)
        owner.refresh_csrf("/projects")
        again = owner.post(
            "/login", data={"username": "ana", "password": PASSWORD, "csrf_token": owner.csrf}
        )
        assert again.status_code == 303
    with database.read_session() as db:
        assert db.get(LoginFailure, "user:ana").count == PAIR_LIMIT  # type: ignore[union-attr]


def test_an_address_that_will_be_refused_does_not_wait(
    app: FastAPI, database: Database, settings: Settings
) -> None:
    make_users_fast(database, "ana")
    with _client(app, "10.2.0.1") as attacker:
        for _ in range(PAIR_LIMIT):
            assert attacker.login("ana", "wrong password").status_code == 401
    assert _delay(database, settings, "ana", "10.2.0.1") == 0  # refused at once instead
    assert _delay(database, settings, "ana", "10.2.0.2") == DELAY


def test_success_clears_only_its_own_pair_counter(app: FastAPI, database: Database) -> None:
    make_users_fast(database, "ana")
    with _client(app, "10.0.0.20") as client:
        for _ in range(PAIR_LIMIT - 1):
            assert client.login("ana", "wrong password").status_code == 401
        assert client.login("ana", PASSWORD).status_code == 303
    with database.session() as db:
        keys = set(db.scalars(select(LoginFailure.key)))
    # a guesser cannot reset the account-wide or address counts with one good login
    assert keys == {"user:ana", "addr:10.0.0.20"}


def test_unknown_user_names_are_throttled_like_known_ones(app: FastAPI) -> None:
    with _client(app, "10.0.0.40") as client:
        for _ in range(PAIR_LIMIT):
            assert client.login("nobody", "wrong").status_code == 401
        assert client.login("nobody", "wrong").status_code == 429
