"""Talking to the JSON API: a bearer-token httpx client that renews an expired login with
its refresh token, and turns every refusal into ApiError carrying the server's message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from labyard.client import config

TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ApiError(Exception):
    """A request the server refused (its `detail`), or one that never reached it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error_message(response: httpx.Response) -> str:
    """The server's reason: `detail` (a string, or validation errors), else OAuth's
    `error_description`, else the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("detail", body.get("error_description"))
        if isinstance(detail, str) and detail:
            return detail
        if isinstance(detail, list):
            parts = []
            for item in detail:
                where = ".".join(str(p) for p in item.get("loc", [])[1:]) if "loc" in item else ""
                parts.append(f"{where}: {item.get('msg', item)}" if where else str(item))
            return "; ".join(parts)
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def _post_auth_form(url: str, endpoint: str, form: dict[str, str]) -> httpx.Response:
    """POST a form to an OAuth2 endpoint of the server (no bearer token): its 200 answer."""
    try:
        response = httpx.post(f"{url}/api/v1/auth/{endpoint}", data=form, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise ApiError(f"cannot reach {url}: {exc}") from None
    if response.status_code != 200:
        raise ApiError(error_message(response), response.status_code)
    return response


def request_token(url: str, **form: str) -> dict[str, Any]:
    """POST the OAuth2 token endpoint (password or refresh_token grant); its JSON."""
    data: dict[str, Any] = _post_auth_form(url, "token", form).json()
    return data


def revoke_token(url: str, token: str) -> None:
    """POST the OAuth2 revocation endpoint (RFC 7009) for `token`."""
    _post_auth_form(url, "revoke", {"token": token})


class Api:
    """The API at the stored (or environment's) URL, as the logged-in user."""

    def __init__(self, credentials: config.Credentials | None = None) -> None:
        self.credentials = credentials or config.load_credentials()
        self.url = self.credentials.url
        self.http = httpx.Client(base_url=self.url, timeout=TIMEOUT)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.access_token}", **(extra or {})}

    def _renew(self) -> bool:
        """Trade the refresh token for a new access token (and store it); False if none."""
        creds = self.credentials
        if creds.from_env or not creds.refresh_token:
            return False
        try:
            issued = request_token(
                self.url, grant_type="refresh_token", refresh_token=creds.refresh_token
            )
        except ApiError:
            return False
        creds.access_token = issued["access_token"]
        creds.refresh_token = issued.get("refresh_token") or creds.refresh_token
        config.save_credentials(creds)
        return True

    def send(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request (renewing the login once on 401); ApiError unless 2xx."""
        try:
            response = self.http.request(method, path, headers=self._headers(headers), **kwargs)
            if response.status_code == 401 and self._renew():
                response = self.http.request(method, path, headers=self._headers(headers), **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach {self.url}: {exc}") from None
        check(response)
        return response

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response (logs that follow, file downloads); ApiError unless 2xx."""
        for attempt in (1, 2):
            try:
                with self.http.stream(
                    method, path, headers=self._headers(None), **kwargs
                ) as response:
                    if response.status_code == 401 and attempt == 1 and self._renew():
                        continue
                    if not response.is_success:
                        response.read()
                    check(response)
                    yield response
                    return
            except httpx.HTTPError as exc:
                raise ApiError(f"cannot reach {self.url}: {exc}") from None

    def get(self, path: str, /, **params: Any) -> Any:
        """GET JSON."""
        return self.send("GET", path, params=params or None).json()

    def post(self, path: str, body: Any = None) -> Any:
        """POST JSON; the answer's JSON (None when empty)."""
        response = self.send("POST", path, json=body)
        return response.json() if response.content else None

    def find_id(self, collection: str, value: str, noun: str) -> int:
        """An id given as a number, or the id of the one item named `value`."""
        if value.isdigit():
            return int(value)
        found = [item["id"] for item in self.get(collection) if item.get("name") == value]
        if len(found) != 1:
            how = "no" if not found else f"{len(found)}"
            raise ApiError(f"{how} {noun} named {value!r}; give its id")
        return int(found[0])


def check(response: httpx.Response) -> None:
    """ApiError with the server's message unless the response is 2xx."""
    if not response.is_success:
        raise ApiError(error_message(response), response.status_code)
