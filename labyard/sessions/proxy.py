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
listens on a Unix socket (labyard/sessions/jupyter.py), reached here and nowhere else.
"""

from __future__ import annotations

from typing import cast

import httpx
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.websockets import WebSocket
from websockets.asyncio.client import unix_connect
from websockets.exceptions import WebSocketException

from labyard.auth.models import User
from labyard.errors import DomainError, PermissionDenied, Unauthenticated
from labyard.sessions import jupyter, service
from labyard.tensorboard import links
from labyard.tensorboard.proxy import (
    DROP_REQUEST,
    DROP_RESPONSE,
    HEAD_TAG,
    MAX_BODY,
    OPAQUE_ORIGIN,
    POLICY_VIOLATION,
    SANDBOX_SHIM,
    TENSORBOARD_CSP,
    TRY_AGAIN_LATER,
    relay,
    same_origin,
)
from labyard.web.deps import SAFE_METHODS, bearer_token, get_database, get_settings, optional_user
from labyard.web.errors import error_response

PURPOSE = "session"
# JupyterLab's opaque origin may also submit its forms and show its dialogs
SANDBOX = "allow-scripts allow-popups allow-downloads allow-forms allow-modals"
JUPYTER_CSP = TENSORBOARD_CSP.replace(TENSORBOARD_CSP.split(";")[0], f"sandbox {SANDBOX}", 1)
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
    origin = request.headers.get("origin")
    if origin not in (None, OPAQUE_ORIGIN) and not same_origin(request):
        return _link_error(request, 403, "Cross-site requests to a lab's session are refused.")
    try:
        target = await run_in_threadpool(authorize, request, lab_id, token)
    except DomainError as exc:
        return _link_error(request, exc.status_code, exc.message)
    if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
        return _preflight(request)
    return await _forward(request, target, token)


def _link_headers(request: Request) -> dict[str, str]:
    """CORS for the sandboxed page (origin `null`, no credentials), no Referer leaks."""
    headers = {"vary": "Origin", "referrer-policy": "no-referrer"}
    if request.headers.get("origin") == OPAQUE_ORIGIN:
        headers["access-control-allow-origin"] = OPAQUE_ORIGIN
    return headers


def _link_error(request: Request, status: int, message: str) -> Response:
    response = PlainTextResponse(message, status_code=status)
    response.headers.update(_link_headers(request))
    response.headers["content-security-policy"] = JUPYTER_CSP
    return response


def _preflight(request: Request) -> Response:
    asked = request.headers.get("access-control-request-headers", "")[:1000]
    headers = _link_headers(request) | {
        "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
        "access-control-allow-headers": asked,
        "access-control-max-age": "600",
    }
    return Response(status_code=204, headers=headers)


async def _forward(request: Request, target: service.Target, token: str | None) -> Response:
    """Send the request to JupyterLab over its socket and stream the answer back."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response(request, 413, "The request is too large for the session.")
    html = "text/html" in request.headers.get("accept", "")
    drop = DROP_REQUEST | {"origin", "referer"} | ({"accept-encoding"} if html else set())
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in drop]
    settings = get_settings(request)
    headers += list(jupyter.auth_headers(settings, target.job_id).items())
    client = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=target.socket, verify=False), timeout=TIMEOUT
    )
    url = httpx.URL("http://localhost").copy_with(
        raw_path=upstream_path(request, target.lab_id, token).encode("latin-1")
    )
    try:
        upstream = await client.send(
            client.build_request(request.method, url, headers=headers, content=body), stream=True
        )
    except (httpx.HTTPError, OSError):
        await client.aclose()
        return error_response(request, 502, "JupyterLab is not answering yet; try again soon.")
    answer = _response_headers(upstream.headers, target.lab_id, token)
    if token is not None:
        answer |= _link_headers(request)
    if _is_plain_html(upstream):
        page = _fix_html(await upstream.aread(), target.lab_id, token)
        await _close(upstream, client)
        answer.pop("content-length", None)
        return Response(page, status_code=upstream.status_code, headers=answer)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=answer,
        background=BackgroundTask(_close, upstream, client),
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


def _is_plain_html(upstream: httpx.Response) -> bool:
    encoding = upstream.headers.get("content-encoding", "identity").lower()
    return upstream.headers.get("content-type", "").startswith("text/html") and (
        encoding == "identity"
    )


def _fix_html(html: bytes, lab_id: int, token: str | None) -> bytes:
    """On a link, JupyterLab's URLs (its page config's baseUrl, script sources) go by the
    link; the sandbox stand-ins for cookies, storage and workers load first."""
    if token is not None:
        html = html.replace(
            jupyter.base_url(lab_id).encode(), f"{link_prefix(lab_id, token)}/".encode()
        )
    head = HEAD_TAG.search(html)
    at = head.end() if head else 0
    return html[:at] + SANDBOX_SHIM + html[at:]


async def _close(upstream: httpx.Response, client: httpx.AsyncClient) -> None:
    await upstream.aclose()
    await client.aclose()


async def proxy_websocket(websocket: WebSocket) -> None:
    """Check a websocket handshake like any request (kernels, terminals), then relay it."""
    lab_id = int(websocket.path_params["lab_id"])
    token = websocket.path_params.get("token")
    origin = websocket.headers.get("origin")
    try:
        if not same_origin(websocket) and not (token and origin == OPAQUE_ORIGIN):
            raise PermissionDenied("Cross-site websockets are refused.")
        target = await run_in_threadpool(authorize, websocket, lab_id, token)
    except DomainError:
        await websocket.close(code=POLICY_VIOLATION)  # before accept: the handshake fails
        return
    settings = get_settings(cast(Request, websocket))
    path = upstream_path(websocket, lab_id, token)
    asked = websocket.headers.get("sec-websocket-protocol", "")
    protocols = [p.strip() for p in asked.split(",") if p.strip()]
    try:
        async with unix_connect(
            target.socket,
            f"ws://localhost{path}",
            additional_headers=jupyter.auth_headers(settings, target.job_id),
            subprotocols=protocols or None,
            open_timeout=10,
            max_size=WS_MAX_MESSAGE,
        ) as upstream:
            await websocket.accept(subprotocol=upstream.subprotocol)
            await relay(websocket, upstream)
    except (OSError, WebSocketException, TimeoutError):
        await websocket.close(code=TRY_AGAIN_LATER)
