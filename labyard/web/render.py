"""Render pages and their HTMX fragments (a fragment is a named block of its page)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from labyard import __version__
from labyard.resources import resource_dir
from labyard.web.deps import PRE_SESSION_COOKIE, cookie_signer, new_pre_session_token


def make_templates() -> Jinja2Templates:
    """The Jinja2 environment of the pages; autoescaping is on for every .html file."""
    templates = Jinja2Templates(directory=str(resource_dir("templates")))
    templates.env.globals["version"] = __version__
    templates.env.filters["filesize"] = human_size
    return templates


def human_size(num: float | int | None) -> str:
    """Bytes as a short human-readable size."""
    if num is None:
        return ""
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def is_htmx(request: Request) -> bool:
    """True for requests sent by htmx."""
    return request.headers.get("hx-request") == "true"


def _csrf_for(request: Request) -> tuple[str, str | None]:
    """The CSRF token for forms on this page, and a new pre-login cookie value if one is due."""
    web_session = getattr(request.state, "web_session", None)
    if web_session is not None:
        return web_session.csrf_token, None
    existing = getattr(request.state, "pre_session_token", None)
    if existing:
        return existing, None
    from labyard.web.deps import read_signed_cookie

    token = read_signed_cookie(request, PRE_SESSION_COOKIE, "csrf")
    if token:
        return token, None
    token = new_pre_session_token()
    request.state.pre_session_token = token
    return token, token


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render page `name`, or only its `block` (an HTMX fragment), with the shared context."""
    templates: Jinja2Templates = request.app.state.templates
    csrf_token, new_cookie = _csrf_for(request)
    ctx: dict[str, Any] = {
        "request": request,
        "user": getattr(request.state, "user", None),
        "csrf_token": csrf_token,
        **(context or {}),
    }
    template = templates.get_template(name)
    if block is None:
        html = template.render(ctx)
    else:
        html = "".join(template.blocks[block](template.new_context(ctx)))
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    if new_cookie:
        settings = request.app.state.settings
        response.set_cookie(
            PRE_SESSION_COOKIE,
            cookie_signer(settings, "csrf").dumps(new_cookie),
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
        )
    return response
