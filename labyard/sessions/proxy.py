"""The reverse proxy to a lab's JupyterLab under `/labs/<id>/session/`, HTTP and websockets.

JupyterLab runs other people's code and pages, so it is served the way TensorBoard is (read
labyard/tensorboard/proxy.py first): every answer carries `Content-Security-Policy: sandbox
...` without `allow-same-origin`, and a browser works in it through a capability link
`/labs/<id>/session/~<token>/...` (labyard/tensorboard/links.py, purpose "session") instead of
Labyard's cookie, which its opaque origin never sends. JupyterLab builds its URLs from its
page config's `baseUrl`, so its HTML pages get the link in place of the base URL.

Every request and every websocket handshake is checked first in a read-only session: WRITE
on the lab's project (it executes code); anyone else gets 404. The proxy adds JupyterLab's
token; Labyard's cookie, authorization and CSRF headers never go upstream. JupyterLab
listens on a Unix socket (labyard/sessions/jupyter.py), reached here and nowhere else; on a
Slurm node, on a port of the node that requires its token.
"""

from __future__ import annotations

from typing import Any, cast

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.client import unix_connect
from websockets.exceptions import WebSocketException

from labyard.auth.models import User
from labyard.errors import DomainError, PermissionDenied, Unauthenticated
from labyard.sessions import jupyter, service
from labyard.tensorboard import links
from labyard.web.deps import SAFE_METHODS, bearer_token, get_database, get_settings, optional_user
from labyard.web.errors import error_response
from labyard.web.sandbox_proxy import (
    DROP_REQUEST,
    DROP_RESPONSE,
    MAX_BODY,
    POLICY_VIOLATION,
    TRY_AGAIN_LATER,
    forward,
    link_error,
    link_headers,
    link_origin_allowed,
    pooled_client,
    preflight,
    relay,
    same_origin,
    sandbox_csp,
    websocket_origin_allowed,
    with_shim,
)

PURPOSE = "session"
# JupyterLab's opaque origin may also submit its forms and show its dialogs
SANDBOX = "allow-scripts allow-popups allow-downloads allow-forms allow-modals"
JUPYTER_CSP = sandbox_csp(SANDBOX)
TIMEOUT = httpx.Timeout(300.0, connect=5.0)
WS_MAX_MESSAGE = 64 * 1024 * 1024  # notebooks' outputs (images) come over the kernel socket


def link_prefix(lab_id: int, token: str) -> str:
    """The capability link's prefix (with no trailing slash)."""
    return f"{jupyter.base_url(lab_id)}~{token}"


def frame_url(request: HTTPConnection, lab_id: int, path: str = "lab") -> str:
    """A fresh link to JupyterLab for this browser session ('' without one)."""
    web_session = getattr(request.state, "web_session", None)
    if web_session is None:
        return ""
    token = links.token_for(
        get_settings(cast(Request, request)), lab_id, web_session, purpose=PURPOSE
    )
    return f"{link_prefix(lab_id, token)}/{path}"


def authorize(conn: HTTPConnection, lab_id: int, token: str | None) -> service.Target:
    """The session's address if the requester may use it (runs in a worker thread)."""
    request = cast(Request, conn)
    settings = get_settings(request)
    with get_database(request).read_sessionmaker() as db:
        try:
            user: User | None
            if token is not None:
                user = links.user_for_token(db, settings, lab_id, token, purpose=PURPOSE)
            else:
                user = optional_user(request, db)
            if user is None:
                raise Unauthenticated("Log in to open the lab's session.")
            return service.target_for_proxy(db, settings, user, lab_id)
        finally:
            db.expunge_all()  # keep the user loaded for an error page rendered later


def upstream_path(conn: HTTPConnection, lab_id: int, token: str | None) -> str:
    """The path and query as sent (percent-encoding untouched), a link's token removed."""
    raw = bytes(conn.scope.get("raw_path") or conn.url.path.encode()).decode("latin-1")
    if token is not None:
        outer = link_prefix(lab_id, token)
        raw = jupyter.base_url(lab_id) + raw[len(outer) + 1 :] if raw.startswith(outer) else ""
        raw = raw or jupyter.base_url(lab_id)
    query = conn.scope.get("query_string", b"").decode("latin-1")
    return raw + ("?" + query if query else "")


async def proxy_http(request: Request) -> Response:
    """One request by bearer token or cookie; a browser opening a page gets a fresh link."""
    lab_id = int(request.path_params["lab_id"])
    if request.method not in SAFE_METHODS and not same_origin(request):
        raise PermissionDenied("Cross-site requests to a lab's session are refused.")
    target = await run_in_threadpool(authorize, request, lab_id, None)
    if (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and bearer_token(request) is None
        and getattr(request.state, "web_session", None) is not None
    ):
        return RedirectResponse(frame_url(request, lab_id, request.path_params["path"]), 307)
    return await _forward(request, target, None)


async def proxy_link(request: Request) -> Response:
    """One request of the sandboxed page, authorised by its link's token."""
    lab_id = int(request.path_params["lab_id"])
    token = str(request.path_params["token"])
    if not link_origin_allowed(request):
        return link_error(
            request, 403, "Cross-site requests to a lab's session are refused.", JUPYTER_CSP
        )
    try:
        target = await run_in_threadpool(authorize, request, lab_id, token)
    except DomainError as exc:
        return link_error(request, exc.status_code, exc.message, JUPYTER_CSP)
    if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
        return preflight(request, "GET, HEAD, POST, PUT, PATCH, DELETE")
    return await _forward(request, target, token)


async def _forward(request: Request, target: service.Target, token: str | None) -> Response:
    """Send the request to JupyterLab over its socket and stream the answer back."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response(request, 413, "The request is too large for the session.")
    html = "text/html" in request.headers.get("accept", "")
    drop = DROP_REQUEST | {"origin", "referer"} | ({"accept-encoding"} if html else set())
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in drop]
    headers += list(jupyter.auth_headers(get_settings(request), target.job_id).items())
    endpoint = target.endpoint
    client = pooled_client(
        endpoint.socket or endpoint.url("/"),
        lambda: httpx.AsyncClient(transport=endpoint.async_transport(), timeout=TIMEOUT),
    )
    url = httpx.URL(target.endpoint.url("/")).copy_with(
        raw_path=upstream_path(request, target.lab_id, token).encode("latin-1")
    )
    outgoing = client.build_request(request.method, url, headers=headers, content=body)

    def answer_headers(upstream: httpx.Headers) -> dict[str, str]:
        answer = _response_headers(upstream, target.lab_id, token)
        return answer | link_headers(request) if token is not None else answer

    return await forward(
        request,
        client,
        outgoing,
        "JupyterLab",
        answer_headers=answer_headers,
        fix_html=lambda page: _fix_html(page, target.lab_id, token),
    )


def _response_headers(upstream: httpx.Headers, lab_id: int, token: str | None) -> dict[str, str]:
    """JupyterLab's headers minus hop-by-hop ones, with the sandboxing policy; a redirect
    within JupyterLab stays on the link it came by."""
    headers = {k: v for k, v in upstream.items() if k.lower() not in DROP_RESPONSE}
    headers["content-security-policy"] = JUPYTER_CSP
    headers["x-frame-options"] = "SAMEORIGIN"
    location = headers.get("location", "")
    base = jupyter.base_url(lab_id)
    if token is not None and location.startswith(base):
        headers["location"] = f"{link_prefix(lab_id, token)}/{location[len(base) :]}"
    return headers


def _fix_html(html: bytes, lab_id: int, token: str | None) -> bytes:
    """On a link, JupyterLab's URLs (its page config's baseUrl, script sources) go by the
    link; the sandbox stand-ins for cookies, storage and workers load first."""
    if token is not None:
        html = html.replace(
            jupyter.base_url(lab_id).encode(), f"{link_prefix(lab_id, token)}/".encode()
        )
    return with_shim(html)


async def proxy_websocket(websocket: WebSocket) -> None:
    """Check a websocket handshake like any request (kernels, terminals), then relay it."""
    lab_id = int(websocket.path_params["lab_id"])
    token = websocket.path_params.get("token")
    try:
        if not websocket_origin_allowed(websocket, token):
            raise PermissionDenied("Cross-site websockets are refused.")
        target = await run_in_threadpool(authorize, websocket, lab_id, token)
    except DomainError:
        await websocket.close(code=POLICY_VIOLATION)  # before accept: the handshake fails
        return
    settings = get_settings(cast(Request, websocket))
    path = upstream_path(websocket, lab_id, token)
    asked = websocket.headers.get("sec-websocket-protocol", "")
    protocols = [p.strip() for p in asked.split(",") if p.strip()]
    endpoint = target.endpoint
    url = endpoint.url(path, scheme="ws")
    options: dict[str, Any] = {
        "additional_headers": jupyter.auth_headers(settings, target.job_id),
        "subprotocols": protocols or None,
        "open_timeout": 10,
        "max_size": WS_MAX_MESSAGE,
    }
    try:
        opened = (
            unix_connect(endpoint.socket, url, **options)
            if endpoint.socket
            else ws_connect(url, proxy=None, **options)  # a node's port: no proxy between
        )
        async with opened as upstream:
            await websocket.accept(subprotocol=upstream.subprotocol)
            await relay(websocket, upstream)
    except (OSError, WebSocketException, TimeoutError):
        await websocket.close(code=TRY_AGAIN_LATER)
