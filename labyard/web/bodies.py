"""Request bodies are read only when the server wants them.

`BodyGuard` wraps every HTTP request's `receive`. The first time anything asks for the body
(FastAPI parsing a form, a route streaming an upload), the guard decides from the headers
and cookies alone whether this body is wanted, the way `csrf_protect` and the auth
dependency will decide it later:

- a state-changing request with the session cookie needs a live session and its CSRF token
  (the X-CSRF-Token header; a plain form may carry it in a field, so it gets the small cap);
- one without the cookie needs a live bearer token, or an endpoint declared with
  `anonymous_body` (the OAuth2 token grant), or, for pages, the signed pre-login cookie;
- every body is capped: `request_max_body_bytes`, or what an endpoint declared with
  `streams_body` allows (uploads, which check their exact limits while they read).

A JSON body is read whole (it is capped) and checked before FastAPI parses it: `NaN`,
`Infinity`, numbers past a float's range and lone surrogates (`"\\ud800"`) are valid to
Python's json module but no response, database or file can hold them, so they are refused here
with a 422, for every route at once (`strict_json`).

A refused body is never read: the error (401, 403 or 413 with its message) is raised where
the body would have been read and rendered by labyard/web/errors.py, so a refused client's
upload is cut off and nothing is parsed, kept in memory or spooled to disk. Plain Starlette
routes (the TensorBoard proxy) authorise themselves before reading and only get the cap.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from labyard.auth import service as auth_service
from labyard.config import Settings
from labyard.db import Database
from labyard.web.deps import (
    CSRF_HEADER,
    CSRF_STALE,
    PRE_SESSION_COOKIE,
    SAFE_METHODS,
    SESSION_COOKIE,
    bearer_token,
    read_signed_cookie,
)

F = TypeVar("F", bound=Callable[..., Any])
BodyLimit = Callable[[Settings], int]
_LIMIT_ATTR = "_labyard_body_limit"
_ANONYMOUS_ATTR = "_labyard_anonymous_body"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UNAUTHENTICATED = "Log in or send an `Authorization: Bearer <token>` header."
MULTIPART_SLACK = 1024 * 1024  # headers and boundaries around the files of a multipart body


def streams_body(limit: BodyLimit) -> Callable[[F], F]:
    """Declare an endpoint that streams an upload: its body may be up to `limit(settings)`
    bytes (the endpoint checks its exact limits while it reads)."""

    def mark(fn: F) -> F:
        setattr(fn, _LIMIT_ATTR, limit)
        return fn

    return mark


BEARER_ONLY = "bearer_only"  # an app's state flag: its requests authenticate by bearer alone


def anonymous_body(fn: F) -> F:
    """Declare an API endpoint that reads a (small) body from callers without credentials."""
    setattr(fn, _ANONYMOUS_ATTR, True)
    return fn


def _too_large(limit: int) -> HTTPException:
    from labyard.web.render import human_size

    return HTTPException(413, f"The request body is larger than the limit of {human_size(limit)}.")


def has_body(scope: Scope) -> bool:
    """True when the request announces a body (a non-zero Content-Length or chunks)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class BodyGuard:
    """ASGI middleware: see the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_body(scope):
            await self.app(scope, receive, send)
            return
        await self.app(scope, _Gate(scope, receive).receive, send)


class _Gate:
    """The guarded `receive` of one request."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope, self._receive = scope, receive
        self.limit: int | None = None
        self.refused: HTTPException | None = None
        self.received = 0

    async def receive(self) -> Message:
        if self.refused is not None:
            raise self.refused
        if self.limit is None:
            try:
                self.limit = await self._decide()
                if _is_json(self.scope) and isinstance(self.scope.get("route"), APIRoute):
                    return await self._whole_json()
            except HTTPException as exc:
                self.refused = exc
                raise
        return await self._next()

    async def _whole_json(self) -> Message:
        """The whole (capped) JSON body as one message, once `strict_json` accepts it."""
        chunks: list[bytes] = []
        while True:
            message = await self._next()
            if message["type"] != "http.request":
                return message
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        strict_json(body)
        return {"type": "http.request", "body": body, "more_body": False}

    async def _next(self) -> Message:
        assert self.limit is not None
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = _too_large(self.limit)
                raise self.refused
        return message

    async def _decide(self) -> int:
        """The body's size limit once the request may send it; else the refusal."""
        request = Request(self.scope)
        settings: Settings = request.app.state.settings
        endpoint = self.scope.get("endpoint")
        declared: BodyLimit | None = getattr(endpoint, _LIMIT_ATTR, None)
        limit = declared(settings) if declared else settings.request_max_body_bytes
        if request.method not in SAFE_METHODS and isinstance(self.scope.get("route"), APIRoute):
            limit = await _credentials_limit(request, limit, streaming=declared is not None)
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            if "transfer-encoding" not in request.headers:
                raise HTTPException(400, "The Content-Length header is not a number.")
        elif int(length) > limit:
            raise _too_large(limit)
        return limit


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise HTTPException(422, f"The number {text[:40]} in the JSON body is out of range.")
    return value


def _no_constant(name: str) -> None:
    raise HTTPException(422, f"{name} is not a number JSON allows.")


def strict_json(body: bytes) -> None:
    """Refuse (422) a JSON body that Python's json module reads but no response, database or
    file can hold: NaN, Infinity, 1e309, lone surrogates. Malformed JSON is left to FastAPI's
    own 422; nesting past the parser's recursion limit is refused here."""
    try:
        data = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise HTTPException(422, "The JSON body is nested too deeply.") from None
    except ValueError:  # malformed, or an integer past Python's digit limit: FastAPI says so
        return
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise HTTPException(
                    422, "The JSON body holds a lone surrogate (\\ud800-\\udfff): not text."
                ) from None


async def _credentials_limit(request: Request, limit: int, *, streaming: bool) -> int:
    """`limit`, or a smaller one, when the request's credentials want its body; else raise
    the 401 or 403 the auth and CSRF dependencies would answer (mirrors `csrf_protect`)."""
    database: Database = request.app.state.db
    token = bearer_token(request)
    # an application that authenticates by bearer tokens alone (DeepHealth's API) ignores
    # cookies: a session cookie sent along (a front-end on the same host) asks no CSRF token
    bearer_only = getattr(request.app.state, BEARER_ONLY, False)
    if (SESSION_COOKIE not in request.cookies or bearer_only) and (
        token is not None or request.url.path.startswith("/api/") or bearer_only
    ):
        if token is not None:
            if not await anyio.to_thread.run_sync(_token_is_live, database, token):
                raise HTTPException(401, UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"})
        elif not getattr(request.scope.get("endpoint"), _ANONYMOUS_ATTR, False):
            raise HTTPException(401, UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"})
        return limit
    expected = await anyio.to_thread.run_sync(_expected_csrf, request, database)
    provided = request.headers.get(CSRF_HEADER)
    if expected and provided is not None and hmac.compare_digest(expected, provided):
        return limit
    content_type = request.headers.get("content-type", "")
    if expected and provided is None and not streaming and content_type.startswith(FORM_TYPES):
        # csrf_protect reads the token from the form: a small, bounded parse
        settings: Settings = request.app.state.settings
        return min(limit, settings.request_max_body_bytes)
    raise HTTPException(403, CSRF_STALE)


def _token_is_live(database: Database, token: str) -> bool:
    with database.read_session() as db:
        return auth_service.live_token(db, token) is not None


def _expected_csrf(request: Request, database: Database) -> str | None:
    """The CSRF token of the request's live session, else of its pre-login cookie."""
    sid = read_signed_cookie(request, SESSION_COOKIE, "session")
    if sid:
        with database.read_session() as db:
            live = auth_service.get_live_session(db, sid)
            if live is not None:
                return live.csrf_token
    return read_signed_cookie(request, PRE_SESSION_COOKIE, "csrf")
