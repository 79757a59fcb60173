"""Request dependencies: the database session, the current user, CSRF, admin checks."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from labyard.auth import service as auth_service
from labyard.auth.models import User, WebSession
from labyard.config import Settings
from labyard.db import Database
from labyard.db.engine import is_read_session
from labyard.errors import PermissionDenied, Unauthenticated

SESSION_COOKIE = "labyard_session"
PRE_SESSION_COOKIE = "labyard_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_STALE = "The form's security token is missing or stale. Reload the page and try again."


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    """The app's database."""
    database: Database = request.app.state.db
    return database


def get_db(request: Request) -> Iterator[Session]:
    """A session per request: committed when the route returns, rolled back when it raises.

    Used with `scope="function"` (SessionDep): the commit runs after the endpoint returned and
    its response was built, but before a byte of it is sent, so an answer always describes a
    committed state and a failing commit is reported as an error, never as success. (A
    request-scoped `yield` dependency exits after the body was sent.) The session is closed
    before a streaming body runs; streams open their own short read sessions.

    Safe methods (GET, HEAD) get a read session, which on SQLite begins deferred and so never
    holds the write lock while a page renders or a response streams.
    """
    database = get_database(request)
    factory = (
        database.read_sessionmaker if request.method in SAFE_METHODS else database.sessionmaker
    )
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        _keep_for_error_page(request, session)
        session.rollback()
        raise
    finally:
        session.close()


def _keep_for_error_page(request: Request, session: Session) -> None:
    """Detach the request's user and browser session before a rollback expires them: the
    error page rendered afterwards still shows who is logged in and carries the CSRF token."""
    for name in ("web_session", "user"):
        obj = getattr(request.state, name, None)
        if obj is not None and obj in session:
            session.expunge(obj)


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit before the response is sent (see get_db)
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def cookie_signer(settings: Settings, purpose: str) -> URLSafeSerializer:
    """The signer for one kind of cookie."""
    return URLSafeSerializer(settings.resolved_secret_key, salt=f"labyard-{purpose}")


def read_signed_cookie(request: Request, name: str, purpose: str) -> str | None:
    """The verified value of a signed cookie, or None."""
    raw = request.cookies.get(name)
    if not raw:
        return None
    try:
        value = cookie_signer(get_settings(request), purpose).loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def load_web_session(request: Request, db: Session) -> WebSession | None:
    """The live browser session of this request, if any (cached on the request)."""
    if not hasattr(request.state, "web_session"):
        sid = read_signed_cookie(request, SESSION_COOKIE, "session")
        request.state.web_session = auth_service.get_live_session(db, sid) if sid else None
    session: WebSession | None = request.state.web_session
    return session


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


# Declares the bearer scheme in OpenAPI (Swagger's "Authorize"); parsing stays ours.
_openapi_bearer = HTTPBearer(auto_error=False, description="An access or personal token.")


def optional_user(
    request: Request,
    db: SessionDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(_openapi_bearer)] = None,
) -> User | None:
    """The user behind this request's bearer token or session cookie, or None."""
    token = bearer_token(request)
    if token is not None:
        row = auth_service.live_token(db, token)
        user = row.user if row is not None else None
        if row is not None and auth_service.token_use_is_stale(row):
            if is_read_session(db):  # write in a short transaction of its own
                auth_service.note_token_use(db, row.id)
            else:  # this session writes anyway (a second writer would wait on it)
                auth_service.mark_token_used(row)
    else:
        web_session = load_web_session(request, db)
        user = web_session.user if web_session else None
    request.state.user = user
    return user


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    """The authenticated user; anonymous requests get 401 (API) or the login page."""
    if user is None:
        raise Unauthenticated("Log in or send an `Authorization: Bearer <token>` header.")
    return user


def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    """The authenticated user, who must be an admin."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may do this.")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
AdminUser = Annotated[User, Depends(admin_user)]


def expected_csrf_token(request: Request, db: Session) -> str | None:
    """The CSRF token this request must carry: its session's, else its pre-login cookie's."""
    web_session = load_web_session(request, db)
    if web_session is not None:
        return web_session.csrf_token
    return read_signed_cookie(request, PRE_SESSION_COOKIE, "csrf")


def new_pre_session_token() -> str:
    """A random CSRF token for a visitor who has not logged in yet."""
    return secrets.token_urlsafe(32)


def form_limits(settings: Settings) -> dict[str, int]:
    """Limits of every form FastAPI or `csrf_protect` parses: text fields, files, a field's size
    (labyard/web/bodies.py caps the whole body before any of it is read)."""
    return {
        "max_fields": settings.form_max_fields,
        "max_files": settings.upload_max_files,
        "max_part_size": settings.form_max_field_bytes,
    }


async def csrf_protect(request: Request, db: SessionDep) -> None:
    """Refuse state-changing requests without the right CSRF token (403).

    Exempt only: API calls that send no session cookie (bearer tokens or none; the auth
    dependency then answers 401 if need be). HTMX sends the token in a header; plain forms
    in a hidden field, read with a bounded parse and only when a session or pre-login cookie
    says which token to expect. labyard/web/bodies.py makes the same decision before any
    body is read.
    """
    if request.method in SAFE_METHODS:
        return
    has_session_cookie = SESSION_COOKIE in request.cookies
    if not has_session_cookie and (
        bearer_token(request) is not None or request.url.path.startswith("/api/")
    ):
        return
    # a database call must not block the event loop (it may wait for SQLite's write lock)
    expected = await run_in_threadpool(expected_csrf_token, request, db)
    if not expected:
        raise PermissionDenied(CSRF_STALE)
    provided = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if provided is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form(**form_limits(get_settings(request)))
        value = form.get(CSRF_FIELD)
        provided = value if isinstance(value, str) else None
    if not provided or not hmac.compare_digest(expected, provided):
        raise PermissionDenied(CSRF_STALE)
