"""Test factories and clients: users, logins, tokens. One place for how tests make things."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.db import Database

ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "correct horse battery"
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def make_user(database: Database, username: str, *, admin: bool = False) -> User:
    """Create a user with the password PASSWORD."""
    with database.session() as db:
        return auth_service.create_user(db, username=username, password=PASSWORD, is_admin=admin)


class WebClient(TestClient):
    """A TestClient that logs in through the login form and sends the CSRF token like htmx."""

    def __init__(self, app: FastAPI, **kwargs: Any) -> None:
        super().__init__(app, follow_redirects=False, **kwargs)
        self.csrf: str | None = None

    def refresh_csrf(self, path: str = "/settings") -> str:
        """Read the CSRF token from a page (the meta tag when logged in, else the form)."""
        page = self.get(path).text
        match = _CSRF_META.search(page) or _CSRF_INPUT.search(page)
        assert match, f"no CSRF token on {path}"
        self.csrf = match.group(1)
        return self.csrf

    def login(self, username: str, password: str = PASSWORD) -> Any:
        """Log in through the form; afterwards the session's CSRF token is known."""
        page = self.get("/login")
        token = self.csrf if page.status_code != 200 and self.csrf else self.refresh_csrf("/login")
        response = self.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )
        if response.status_code == 303:
            self.refresh_csrf()
        return response

    def hx(self, method: str, url: str, **kwargs: Any) -> Any:
        """A request as htmx sends it: HX-Request and the CSRF header."""
        headers = {
            "HX-Request": "true",
            "X-CSRF-Token": self.csrf or "",
            **kwargs.pop("headers", {}),
        }
        return self.request(method, url, headers=headers, **kwargs)


def bearer_token(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """An OAuth2 access token obtained through the password grant."""
    response = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def auth(token: str) -> dict[str, str]:
    """The Authorization header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}
