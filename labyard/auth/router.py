"""The auth JSON API: OAuth2 tokens, me, personal tokens, users (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

from labyard.auth import service
from labyard.auth.models import User
from labyard.auth.schemas import (
    PasswordChange,
    PersonalTokenCreate,
    PersonalTokenCreated,
    PersonalTokenOut,
    TokenResponse,
    UserCreate,
    UserOut,
    UserUpdate,
)
from labyard.auth.throttle import client_address, pause_for_account
from labyard.errors import Throttled, Unauthenticated
from labyard.web.bodies import anonymous_body
from labyard.web.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, get_database

router = APIRouter(prefix="/api/v1", tags=["auth"])


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/auth/token", response_model=TokenResponse)
@anonymous_body  # the grant is how a caller without credentials gets some
def token(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    grant_type: Annotated[str, Form()],
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    scope: Annotated[str, Form()] = "",
) -> TokenResponse | JSONResponse:
    """OAuth2 password and refresh_token grants (form fields, as RFC 6749 says)."""
    try:
        if grant_type == "password":
            if not username or password is None:
                return _oauth_error("invalid_request", "username and password are required")
            address = client_address(request, settings)
            database = get_database(request)
            pause_for_account(database, settings, username=username, address=address, request_db=db)
            user = service.authenticate(
                db, settings, username=username, password=password, address=address
            )
            issued = service.issue_oauth_tokens(db, settings, user)
        elif grant_type == "refresh_token":
            if not refresh_token:
                return _oauth_error("invalid_request", "refresh_token is required")
            issued = service.refresh_oauth_tokens(db, settings, refresh_token)
        else:
            return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r}")
    except Throttled as exc:
        response = _oauth_error("invalid_grant", exc.message, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except Unauthenticated as exc:
        return _oauth_error("invalid_grant", exc.message)  # failures are committed
    return TokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        scope=scope,
    )


@router.post("/auth/revoke", status_code=200)
@anonymous_body  # the token in the body is the caller's only credential
def revoke(
    db: SessionDep,
    token: Annotated[str, Form(max_length=200)],
    token_type_hint: Annotated[str, Form(max_length=20)] = "",
) -> dict[str, str]:
    """OAuth2 token revocation (RFC 7009): end an access or refresh token; a refresh token
    ends with the access token of its login (`labyard logout` sends it). 200 also for an
    unknown or ended token; personal tokens are ended with DELETE /api/v1/me/tokens/{id}."""
    service.revoke_oauth_token(db, token)
    return {}


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> User:
    """The authenticated user."""
    return user


@router.post("/me/password", status_code=204)
def change_password(body: PasswordChange, user: CurrentUser, db: SessionDep) -> None:
    """Change my password (the current one is required). Every session and token of mine
    ends, the one that sent this too: get a new token with the new password."""
    service.change_own_password(
        db, user, current_password=body.current_password, new_password=body.new_password
    )


@router.get("/me/tokens", response_model=list[PersonalTokenOut])
def list_tokens(user: CurrentUser, db: SessionDep) -> list[object]:
    """My personal access tokens."""
    return list(service.list_personal_tokens(db, user))


@router.post("/me/tokens", response_model=PersonalTokenCreated, status_code=201)
def create_token(body: PersonalTokenCreate, user: CurrentUser, db: SessionDep) -> dict[str, object]:
    """Create a personal access token; its text is in this answer only."""
    text, row = service.create_personal_token(db, user, name=body.name)
    return {**PersonalTokenOut.model_validate(row).model_dump(), "token": text}


@router.delete("/me/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, user: CurrentUser, db: SessionDep) -> None:
    """Revoke one of my personal access tokens."""
    service.revoke_personal_token(db, user, token_id)


@router.get("/users", response_model=list[UserOut])
def list_users(_admin: AdminUser, db: SessionDep) -> list[User]:
    """Every user (admin)."""
    return service.list_users(db)


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserCreate, _admin: AdminUser, db: SessionDep) -> User:
    """Create a user (admin)."""
    return service.create_user(
        db, username=body.username, password=body.password, is_admin=body.is_admin
    )


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: int, body: UserUpdate, admin: AdminUser, db: SessionDep) -> User:
    """Reset a password, (de)activate, or change admin rights (admin)."""
    return service.update_user(
        db,
        admin,
        user_id,
        password=body.password,
        is_active=body.is_active,
        is_admin=body.is_admin,
    )
