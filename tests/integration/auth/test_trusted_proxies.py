"""Behind a reverse proxy: X-Forwarded-For names the client only when the TCP peer is a
proxy LABYARD_TRUSTED_PROXIES trusts; a client cannot pick its own address."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request

from labyard.auth.throttle import client_address
from labyard.config import Settings
from labyard.db import Database
from tests.factories import PASSWORD, WebClient, make_users_fast

ADDRESS_LIMIT = 3
PROXY = "10.8.0.2"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A proxy on 10.8.0.0/24 (and a second one by address); small limits."""
    return settings.model_copy(
        update={
            "trusted_proxies": "10.8.0.0/24, 192.0.2.7",
            "login_max_failures": 100,
            "login_max_failures_per_address": ADDRESS_LIMIT,
        }
    )


def _request(settings: Settings, peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


def test_the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy(settings: Settings) -> None:
    assert client_address(_request(settings, PROXY, "203.0.113.5"), settings) == "203.0.113.5"
    # a chain of trusted proxies is walked from the right; the client's own claims are not
    chain = _request(settings, PROXY, "6.6.6.6, 203.0.113.5, 192.0.2.7")
    assert client_address(chain, settings) == "203.0.113.5"
    two_headers = _request(settings, PROXY, "6.6.6.6", "203.0.113.5")
    assert client_address(two_headers, settings) == "203.0.113.5"
    # one address, one counter, however it is spelled
    spellings = ("::ffff:203.0.113.5", "0:0:0:0:0:ffff:cb00:7105")
    assert len({client_address(_request(settings, PROXY, s), settings) for s in spellings}) == 1
    # no header from the proxy: the proxy is all we know
    assert client_address(_request(settings, PROXY), settings) == PROXY


def test_a_header_from_an_untrusted_peer_is_ignored(settings: Settings) -> None:
    spoofed = _request(settings, "198.51.100.9", "203.0.113.5")
    assert client_address(spoofed, settings) == "198.51.100.9"
    plain = Settings(**{**settings.model_dump(), "trusted_proxies": ""})
    assert client_address(_request(plain, PROXY, "203.0.113.5"), plain) == PROXY


def test_clients_behind_the_proxy_are_throttled_apart(app: FastAPI, database: Database) -> None:
    make_users_fast(database, "ana")
    with WebClient(app, client=(PROXY, 40000)) as proxy:
        guesser = {"X-Forwarded-For": "203.0.113.5"}
        for n in range(ADDRESS_LIMIT):
            failed = proxy.post(
                "/api/v1/auth/token",
                data={"grant_type": "password", "username": f"guess{n}", "password": "x"},
                headers=guesser,
            )
            assert failed.status_code == 400
        data = {"grant_type": "password", "username": "ana", "password": PASSWORD}
        assert proxy.post("/api/v1/auth/token", data=data, headers=guesser).status_code == 429
        # another client behind the same proxy is not affected
        other = {"X-Forwarded-For": "203.0.113.6"}
        assert proxy.post("/api/v1/auth/token", data=data, headers=other).status_code == 200


def test_spoofed_headers_do_not_escape_the_address_throttle(
    app: FastAPI, database: Database
) -> None:
    make_users_fast(database, "ana")
    with WebClient(app, client=("198.51.100.9", 40000)) as attacker:
        for n in range(ADDRESS_LIMIT):
            failed = attacker.post(
                "/api/v1/auth/token",
                data={"grant_type": "password", "username": "ana", "password": f"guess{n}"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            assert failed.status_code == 400
        data = {"grant_type": "password", "username": "ana", "password": PASSWORD}
        fresh = {"X-Forwarded-For": "203.0.113.200"}
        assert attacker.post("/api/v1/auth/token", data=data, headers=fresh).status_code == 429


def test_a_bad_proxy_setting_is_refused_at_start(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="'10.0.0.300' is not an IP address or CIDR"):
        Settings(**{**settings.model_dump(), "trusted_proxies": "10.0.0.1, 10.0.0.300"})
