"""The reverse proxy to TensorBoard processes under `/tensorboard/<id>/`.

TensorBoard's pages need inline and evaluated scripts, and a TensorBoard shows whatever its
log dirs hold, so they never run on Labyard's origin: every proxied response carries
`Content-Security-Policy: sandbox allow-scripts ...` without `allow-same-origin`, and the
platform frames it in `<iframe sandbox="allow-scripts ...">`. Its origin is then opaque: its
scripts cannot read Labyard's cookies or pages, and the browser sends no Labyard cookie with
its requests. Those requests are authorised by a capability token in their path instead
(`/tensorboard/<id>/~<token>/...`, see labyard/tensorboard/links.py); they come from origin
`null`, which is the only origin the answers allow (CORS, no credentials).

The plain prefix `/tensorboard/<id>/...` serves API clients (bearer tokens) and cookies; a
browser opening its page is sent on to a fresh link. Every request, websocket handshakes,
preflights and static files included, is checked first (READ on the instance's project) in a
read-only session: a proxied request never takes the database's write lock. These are plain
Starlette routes, outside the app-wide CSRF dependency: TensorBoard's page sends read-only POST
queries without Labyard's token. On the plain prefix state-changing methods must come from this
origin (the session cookie is SameSite=Lax); a link carries no ambient credential to forge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from labyard.auth.models import User
from labyard.errors import DomainError, PermissionDenied, Unauthenticated
from labyard.tensorboard import links, process, service
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

# what TensorBoard's opaque origin may do: run scripts, open links, download its CSVs
SANDBOX = "allow-scripts allow-popups allow-downloads"
TENSORBOARD_CSP = sandbox_csp(SANDBOX)
TIMEOUT = httpx.Timeout(120.0, connect=5.0)


@dataclass(frozen=True)
class Target:
    """Where an allowed request goes, and the link prefix it came by (if any)."""

    instance_id: int
    port: int
    link_prefix: str = ""


def authorize(conn: HTTPConnection, instance_id: int, token: str | None = None) -> Target:
    """The instance's address if the requester may READ it (runs in a worker thread).

    With `token` (a link), the token names the user; else the bearer token or session cookie.
    A read session: nothing here waits for, or takes, the write lock."""
    # the deps read only cookies, headers, app and state, which websockets have too
    request = cast(Request, conn)
    database = get_database(request)
    with database.read_sessionmaker() as db:
        try:
            user: User | None
            if token is not None:
                user = links.user_for_token(db, get_settings(request), instance_id, token)
            else:
                user = optional_user(request, db)
            if user is None:
                raise Unauthenticated("Log in to open TensorBoard.")
            instance = service.instance_for_proxy(db, user, instance_id)
            assert instance.port is not None
            service.note_access(database, instance)
            prefix = f"{process.path_prefix(instance_id)}/~{token}" if token else ""
            return Target(instance.id, instance.port, prefix)
        finally:
            # keep the user loaded for an error page rendered after this session is gone
            db.expunge_all()


def upstream_path(conn: HTTPConnection, target: Target | None = None) -> bytes:
    """The request's path and query as sent (percent-encoding untouched), a link's token
    segment removed (TensorBoard serves under `--path_prefix /tensorboard/<id>`)."""
    raw = bytes(conn.scope.get("raw_path") or conn.url.path.encode())
    if target is not None and target.link_prefix:
        outer = target.link_prefix.encode()
        inner = process.path_prefix(target.instance_id).encode()
        raw = inner + raw[len(outer) :] if raw.startswith(outer) else inner + b"/"
    query = conn.scope.get("query_string", b"")
    return raw + (b"?" + query if query else b"")


async def redirect_to_slash(request: Request) -> Response:
    """`/tensorboard/<id>` -> `/tensorboard/<id>/` (after the same check)."""
    instance_id = int(request.path_params["instance_id"])
    await run_in_threadpool(authorize, request, instance_id)
    return RedirectResponse(f"{process.path_prefix(instance_id)}/", status_code=307)


async def proxy_http(request: Request) -> Response:
    """Forward one request (bearer token or session cookie) to the instance's TensorBoard.

    A browser asking for TensorBoard's page is sent to a fresh link: under the sandbox its
    page's own requests carry no cookie."""
    if request.method not in SAFE_METHODS and not same_origin(request):
        raise PermissionDenied("Cross-site requests to TensorBoard are refused.")
    instance_id = int(request.path_params["instance_id"])
    target = await run_in_threadpool(authorize, request, instance_id)
    web_session = getattr(request.state, "web_session", None)
    if (
        request.method in ("GET", "HEAD")
        and request.path_params["path"] == ""
        and web_session is not None
        and bearer_token(request) is None
    ):
        url = links.frame_url(get_settings(request), instance_id, web_session)
        return RedirectResponse(url, status_code=307)
    return await _forward(request, target)


async def proxy_link(request: Request) -> Response:
    """Forward one request of the sandboxed page (authorised by its link's token)."""
    if not link_origin_allowed(request):
        return link_error(
            request, 403, "Cross-site requests to TensorBoard are refused.", TENSORBOARD_CSP
        )
    instance_id = int(request.path_params["instance_id"])
    try:
        target = await run_in_threadpool(
            authorize, request, instance_id, request.path_params["token"]
        )
    except DomainError as exc:
        return link_error(request, exc.status_code, exc.message, TENSORBOARD_CSP)
    if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
        return preflight(request, "GET, HEAD, POST")
    return await _forward(request, target)


async def _forward(request: Request, target: Target) -> Response:
    """Send the request to TensorBoard and stream its answer back."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response(request, 413, "The request is too large for TensorBoard.")
    forwarded = [(k, v) for k, v in request.headers.items() if k.lower() not in DROP_REQUEST]
    # plain HTTP on loopback: no TLS context to build (slow), no proxy variables to obey
    base = f"http://{process.HOST}:{target.port}"
    client = pooled_client(
        base, lambda: httpx.AsyncClient(timeout=TIMEOUT, verify=False, trust_env=False)
    )
    url = httpx.URL(base).copy_with(raw_path=upstream_path(request, target))
    outgoing = client.build_request(request.method, url, headers=forwarded, content=body)

    def answer_headers(upstream: httpx.Headers) -> dict[str, str]:
        headers = response_headers(upstream, target)
        return headers | link_headers(request) if target.link_prefix else headers

    return await forward(
        request, client, outgoing, "TensorBoard", answer_headers=answer_headers, fix_html=_fix_html
    )


def response_headers(upstream: httpx.Headers, target: Target | None = None) -> dict[str, str]:
    """TensorBoard's headers minus hop-by-hop ones, with the sandboxing policy; a redirect
    within TensorBoard stays on the link it came by."""
    headers = {k: v for k, v in upstream.items() if k.lower() not in DROP_RESPONSE}
    headers["content-security-policy"] = TENSORBOARD_CSP
    headers["x-frame-options"] = "SAMEORIGIN"
    location = headers.get("location", "")
    if target is not None and target.link_prefix:
        inner = process.path_prefix(target.instance_id) + "/"
        if location.startswith(inner):
            headers["location"] = target.link_prefix + location[len(inner) - 1 :]
    return headers


def _fix_html(html: bytes) -> bytes:
    """TensorBoard's pages name their fonts from the server root (`url(/font-roboto/...)`),
    which misses `--path_prefix`: made relative, they resolve under the prefix. And cookies and
    storage throw in a sandbox without same-origin: SANDBOX_SHIM goes first."""
    return with_shim(html.replace(b"url(/font-roboto/", b"url(font-roboto/"))


async def proxy_websocket(websocket: WebSocket) -> None:
    """Check a websocket handshake like any request, then relay it to TensorBoard."""
    instance_id = int(websocket.path_params["instance_id"])
    token = websocket.path_params.get("token")
    try:
        if not websocket_origin_allowed(websocket, token):
            raise PermissionDenied("Cross-site websockets are refused.")
        target = await run_in_threadpool(authorize, websocket, instance_id, token)
    except DomainError:
        await websocket.close(code=POLICY_VIOLATION)  # before accept: the handshake fails
        return
    url = f"ws://{process.HOST}:{target.port}{upstream_path(websocket, target).decode()}"
    try:
        async with ws_connect(url, open_timeout=5) as upstream:
            await websocket.accept()
            await relay(websocket, upstream)
    except (OSError, WebSocketException, TimeoutError):
        await websocket.close(code=TRY_AGAIN_LATER)
