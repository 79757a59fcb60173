"""DeepHealth's login: `POST /backend/auth/token/`, the OAuth2 password (and refresh) grant of
a registered public client (`client_id` in LABYARD_DEEPHEALTH_CLIENT_IDS), answered with
Labyard's own access and refresh tokens; the bearer-only user dependency of the API; and
the auth app's views the front-end uses (the current user, users, password change).

The token endpoint is a plain Starlette route: it reads a small form (or JSON) body from a
caller without credentials, which the body guard allows plain routes under its size cap.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.auth.throttle import client_address, pause_for_account
from labyard.config import Settings
from labyard.db import Database
from labyard.deephealth import clients, profiles, service
from labyard.deephealth.errors import refused, unauthenticated
from labyard.deephealth.models import DeepHealthProfile
from labyard.deephealth.schemas import PasswordChangeBody, ProfileBody
from labyard.errors import NotFound, Throttled, Unauthenticated
from labyard.web.deps import SessionDep, bearer_token, form_limits, optional_user

BAD_CREDENTIALS = "Invalid credentials given."
SCOPE = "read write"


def _error(error: str, status: int, description: str | None = None) -> JSONResponse:
    body = (
        {"error": error}
        if description is None
        else {"error": error, "error_description": description}
    )
    return JSONResponse(body, status_code=status)


async def _fields(request: Request, settings: Settings) -> dict[str, str] | None:
    """The grant's fields from a form or JSON body; None when it does not parse."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            data = json.loads(await request.body())
            if not isinstance(data, dict):
                return None
            return {k: v for k, v in data.items() if isinstance(v, str)}
        form: FormData = await request.form(**form_limits(settings))
    except (ValueError, UnicodeDecodeError):
        return None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _grant(
    database: Database, settings: Settings, fields: dict[str, str], address: str | None
) -> JSONResponse:
    """Run the grant in one short transaction (failed logins are recorded and committed)."""
    grant = fields.get("grant_type", "")
    if grant == "password":
        username, password = fields.get("username", ""), fields.get("password")
        if not username or password is None:
            return _error("invalid_request", 400, "Request is missing username parameter.")
        pause_for_account(database, settings, username=username, address=address)
    elif grant != "refresh_token":
        return _error("unsupported_grant_type", 400)
    with database.session() as db:
        try:
            if grant == "password":
                user = auth_service.authenticate(
                    db, settings, username=username, password=password or "", address=address
                )
                issued = auth_service.issue_oauth_tokens(db, settings, user)
            else:
                issued = auth_service.refresh_oauth_tokens(
                    db, settings, fields.get("refresh_token", "")
                )
        except Throttled as exc:
            response = _error("invalid_grant", 429, exc.message)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        except Unauthenticated:
            return _error("invalid_grant", 400, BAD_CREDENTIALS)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "scope": SCOPE,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def token(request: Request) -> Response:
    """POST /backend/auth/token/: a registered client's password or refresh grant."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.db
    if bearer_token(request) is not None:  # DeepHealth authenticates before the grant
        live = await run_in_threadpool(_token_is_live, database, bearer_token(request) or "")
        if not live:
            return unauthenticated(request)
    fields = await _fields(request, settings)
    if fields is None:
        return _error("invalid_request", 400, "The body must be a form or a JSON object.")
    if not await run_in_threadpool(_client_is_known, database, settings, fields):
        return _error("invalid_client", 401)
    address = client_address(request, settings)
    return await run_in_threadpool(_grant, database, settings, fields, address)


async def revoke_token(request: Request) -> Response:
    """POST /backend/auth/revoke-token/: a registered client ends an access or refresh
    token (204, as RFC 7009 also for a token that is unknown or already ended)."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.db
    fields = await _fields(request, settings)
    if fields is None:
        return _error("invalid_request", 400, "The body must be a form or a JSON object.")
    if not await run_in_threadpool(_client_is_known, database, settings, fields):
        return _error("invalid_client", 401)
    await run_in_threadpool(_revoke, database, fields.get("token", ""))
    return Response(status_code=204)


def _revoke(database: Database, token: str) -> None:
    with database.session() as db:
        auth_service.revoke_oauth_token(db, token)


def _client_is_known(database: Database, settings: Settings, fields: dict[str, str]) -> bool:
    with database.read_session() as db:
        return clients.is_registered(db, settings, fields.get("client_id", ""))


def _token_is_live(database: Database, token: str) -> bool:
    with database.read_session() as db:
        return auth_service.live_token(db, token) is not None


def bearer_user(request: Request, db: SessionDep) -> User:
    """The user of the request's bearer token; DeepHealth's API takes no session cookie."""
    if bearer_token(request) is None:
        raise Unauthenticated("Authentication credentials were not provided.")
    user = optional_user(request, db)
    if user is None:
        raise Unauthenticated("Invalid token header. No credentials provided.")
    return user


BearerUser = Annotated[User, Depends(bearer_user)]
router = APIRouter()


# ---------------------------------------------------------------- the auth app's views


@router.get("/auth/user/")
def current_user(user: BearerUser, db: SessionDep) -> dict[str, object]:
    """The caller."""
    return profiles.user_json(user, db.get(DeepHealthProfile, user.id))


@router.put("/auth/user/")
def update_current_user(body: ProfileBody, user: BearerUser, db: SessionDep) -> dict[str, object]:
    """Set the caller's e-mail and names (the username stays)."""
    return profiles.update_profile(db, user, body)


@router.delete("/auth/user/")
def delete_current_user(user: BearerUser) -> None:
    """Accounts are removed (deactivated) by an administrator in Labyard."""
    raise refused("Labyard accounts are deactivated by an administrator.", 403)


@router.post("/auth/user/")
def register_user() -> None:
    """Registration is an administrator's job in Labyard."""
    raise refused("Labyard accounts are made by an administrator.", 403)


@router.post("/auth/password_reset/")
@router.post("/auth/password_reset/confirm/")
@router.post("/auth/password_reset/validate_token/")
def password_reset() -> None:
    """Labyard sends no e-mail: an administrator sets a forgotten password."""
    raise refused(
        "Labyard has no password reset by e-mail: ask an administrator to set a new password.",
        403,
    )


@router.get("/auth/users/")
def list_users(user: BearerUser, db: SessionDep) -> list[dict[str, object]]:
    """The caller and the members of the caller's projects."""
    return service.list_users(db, user)


@router.get("/auth/users/{user_id}/")
def get_user(user_id: int, user: BearerUser, db: SessionDep) -> dict[str, object]:
    """One of the users the caller may see."""
    found = next((u for u in service.list_users(db, user) if u["id"] == user_id), None)
    if found is None:
        raise NotFound("No such user.")
    return found


@router.put("/auth/change-password/")
def change_password(body: PasswordChangeBody, user: BearerUser, db: SessionDep) -> dict[str, str]:
    """Change the caller's password; their tokens end (log in again)."""
    service.change_password(
        db, user, old=body.old_password, new=body.new_password1, again=body.new_password2
    )
    return {}


@router.get("/auth/testUser/")
def test_user(user: BearerUser) -> dict[str, str]:
    """A check that the token works."""
    return {"result": "ok"}
