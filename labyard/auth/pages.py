"""Login, logout and the settings page (password, personal access tokens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from labyard.auth import service
from labyard.auth.throttle import client_address, pause_for_account
from labyard.config import Settings
from labyard.errors import Throttled, Unauthenticated
from labyard.web.deps import (
    SESSION_COOKIE,
    CurrentUser,
    OptionalUser,
    SessionDep,
    SettingsDep,
    cookie_signer,
    get_database,
    load_web_session,
)
from labyard.web.render import render

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only same-site paths may be redirected to after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"  # the home page: my jobs, the queue, the GPUs
    return target


def _set_session_cookie(response: Response, settings: Settings, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        cookie_signer(settings, "session").dumps(session_id),
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


@router.get("/login")
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    """The login form (already logged in: go on)."""
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(request, "login.html", {"next": _safe_next(next)})


@router.post("/login")
def login(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the credentials and start a fresh session (any old one is revoked)."""
    address = client_address(request, settings)
    database = get_database(request)
    pause_for_account(database, settings, username=username, address=address, request_db=db)
    try:
        user = service.authenticate(
            db, settings, username=username, password=password, address=address
        )
    except (Unauthenticated, Throttled) as exc:
        status = 429 if isinstance(exc, Throttled) else 401
        return render(
            request,
            "login.html",
            {"error": exc.message, "next": _safe_next(next), "username": username},
            status_code=status,
        )
    old = load_web_session(request, db)
    if old is not None:
        service.revoke_session(db, old.id)
    web_session = service.create_session(db, settings, user)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session_cookie(response, settings, web_session.id)
    return response


@router.post("/logout")
def logout(request: Request, db: SessionDep) -> Response:
    """End the session on the server and drop the cookie."""
    web_session = load_web_session(request, db)
    if web_session is not None:
        service.revoke_session(db, web_session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/settings")
def settings_page(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    """My account: change password, personal access tokens."""
    tokens = service.list_personal_tokens(db, user)
    return render(request, "settings.html", {"tokens": tokens})


@router.post("/settings/tokens")
def create_token(
    request: Request, user: CurrentUser, db: SessionDep, name: Annotated[str, Form()]
) -> Response:
    """Create a personal access token and show its text once."""
    text, _row = service.create_personal_token(db, user, name=name)
    tokens = service.list_personal_tokens(db, user)
    return render(request, "settings.html", {"tokens": tokens, "new_token": text}, block="tokens")


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, user: CurrentUser, db: SessionDep) -> Response:
    """Revoke a personal access token."""
    service.revoke_personal_token(db, user, token_id)
    tokens = service.list_personal_tokens(db, user)
    return render(request, "settings.html", {"tokens": tokens}, block="tokens")


@router.post("/settings/password")
def change_password(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    current_password: Annotated[str, Form()],
    new_password: Annotated[str, Form()],
) -> Response:
    """Change my password; every other session and token ends, this browser logs in anew."""
    service.change_own_password(
        db, user, current_password=current_password, new_password=new_password
    )
    web_session = service.create_session(db, settings, user)
    response = RedirectResponse("/settings?changed=1", status_code=303)
    _set_session_cookie(response, settings, web_session.id)
    return response
