"""The sessions pages: the lab page's session panel (Start, Stop, Restart, the idle warning),
the JupyterLab page (a sandboxed frame), the list of sessions, and the proxy routes.

The lab page loads the panel from `/labs/<id>/jupyter/panel` (WRITE members only); its
buttons post to `/labs/<id>/jupyter/{start,stop,restart,keep}` and get the panel back.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute

from labyard.flavors.service import list_flavors
from labyard.sessions import proxy, service
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import is_htmx, render

router = APIRouter(include_in_schema=False)
NAV_LINKS = [("Sessions", "/sessions")]
PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
LINK_PATH = "/labs/{lab_id:int}/session/~{token}/{path:path}"
PLAIN_PATH = "/labs/{lab_id:int}/session/{path:path}"

# Plain Starlette routes: each request is checked inside (see labyard/sessions/proxy.py).
router.routes.extend(
    [
        Route(LINK_PATH, proxy.proxy_link, methods=PROXY_METHODS),
        WebSocketRoute(LINK_PATH, proxy.proxy_websocket),
        Route(PLAIN_PATH, proxy.proxy_http, methods=PROXY_METHODS),
        WebSocketRoute(PLAIN_PATH, proxy.proxy_websocket),
    ]
)


def _panel(
    request: Request, db: SessionDep, settings: SettingsDep, user: CurrentUser, lab_id: int
) -> Response:
    state = service.get_session(db, settings, user, lab_id)
    flavors = [f.name for f in list_flavors(db)]
    context: dict[str, Any] = {"s": state, "flavors": flavors}
    return render(request, "session_panel.html", context, block="panel")


def _done(
    request: Request, lab_id: int, db: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    """After a button: htmx gets the panel again, a plain form goes back where it was."""
    if is_htmx(request):
        return _panel(request, db, settings, user, lab_id)
    back = (
        "/sessions" if request.query_params.get("next") == "sessions" else f"/labs/{lab_id}/files"
    )
    return RedirectResponse(back, status_code=303)


@router.get("/labs/{lab_id}/jupyter/panel")
def session_panel(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The lab page's session panel (polled while the session queues or starts)."""
    return _panel(request, db, settings, user, lab_id)


@router.post("/labs/{lab_id}/jupyter/start")
def start(
    request: Request,
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    flavor: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Start the lab's session (on the chosen flavor, else the lab's)."""
    service.start_session(db, settings, user, lab_id, flavor=flavor or None)
    return _done(request, lab_id, db, settings, user)


@router.post("/labs/{lab_id}/jupyter/stop")
def stop(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Stop the lab's session."""
    service.stop_session(db, user, lab_id)
    return _done(request, lab_id, db, settings, user)


@router.post("/labs/{lab_id}/jupyter/restart")
def restart(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Stop the lab's session and queue a fresh one."""
    service.restart_session(db, settings, user, lab_id)
    return _done(request, lab_id, db, settings, user)


@router.post("/labs/{lab_id}/jupyter/keep")
def keep(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The idle warning's "keep running"."""
    service.keep_running(db, settings, user, lab_id)
    return _done(request, lab_id, db, settings, user)


@router.get("/labs/{lab_id}/jupyter")
def jupyter_page(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """JupyterLab in a sandboxed frame once the session runs (its link made for this
    browser session); until then the panel, which polls."""
    state = service.get_session(db, settings, user, lab_id)
    context = {
        "s": state,
        "flavors": [f.name for f in list_flavors(db)],
        "frame_url": proxy.frame_url(request, lab_id) if state.state == "running" else "",
        "sandbox": proxy.SANDBOX,
    }
    return render(request, "session.html", context)


@router.get("/sessions")
def sessions_page(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The queued and running sessions I may use (admins: all, with who started them)."""
    rows = service.list_sessions(db, settings, user)
    return render(request, "sessions.html", {"sessions": rows})
