"""The reverse proxy to TensorBoard processes under `/tensorboard/<id>/`.

Every request, websocket handshakes and static files included, is checked first: anonymous
requests get the login page (websockets: closed), users who may not READ the instance's
project get 404. Paths go upstream unchanged (TensorBoard runs with `--path_prefix`).

These are plain Starlette routes, outside the app-wide CSRF dependency: TensorBoard's own
page sends read-only POST queries without Labyard's token. State-changing methods must come
from this origin instead (the Origin header), and the session cookie is SameSite=Lax.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httpx
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from labyard.errors import DomainError, PermissionDenied, Unauthenticated
from labyard.tensorboard import process, service
from labyard.web.deps import SAFE_METHODS, get_database, optional_user
from labyard.web.errors import error_response

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
# never sent upstream: Labyard's credentials stay with Labyard
DROP_REQUEST = HOP_BY_HOP | {"cookie", "authorization", "x-csrf-token", "content-length"}
# never passed back: TensorBoard's own policy (it allows any frame ancestor), cookies
DROP_RESPONSE = HOP_BY_HOP | {"content-security-policy", "x-frame-options", "set-cookie", "server"}
# TensorBoard's pages need inline and evaluated scripts and inline styles; only here.
TENSORBOARD_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline' data:; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
MAX_BODY = 10 * 1024 * 1024
TIMEOUT = httpx.Timeout(120.0, connect=5.0)
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


@dataclass(frozen=True)
class Target:
    """Where an allowed request goes."""

    instance_id: int
    port: int


def authorize(conn: HTTPConnection, instance_id: int) -> Target:
    """The instance's address if the requester may READ it (runs in a worker thread)."""
    # the deps read only cookies, headers, app and state, which websockets have too
    request = cast(Request, conn)
    with get_database(request).sessionmaker() as db:
        try:
            user = optional_user(request, db)
            if user is None:
                raise Unauthenticated("Log in to open TensorBoard.")
            instance = service.instance_for_proxy(db, user, instance_id)
            assert instance.port is not None
            return Target(instance.id, instance.port)
        finally:
            # refusals change nothing; committing (not rolling back) keeps the user loaded
            # for the error page rendered after this session is gone
            db.commit()


def same_origin(conn: HTTPConnection) -> bool:
    """False when the browser says the request comes from another site."""
    origin = conn.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == conn.headers.get("host", "")


def upstream_path(conn: HTTPConnection) -> bytes:
    """The request's path and query exactly as sent (percent-encoding untouched)."""
    raw = conn.scope.get("raw_path") or conn.url.path.encode()
    query = conn.scope.get("query_string", b"")
    return bytes(raw) + (b"?" + query if query else b"")


async def redirect_to_slash(request: Request) -> Response:
    """`/tensorboard/<id>` -> `/tensorboard/<id>/` (after the same check)."""
    instance_id = int(request.path_params["instance_id"])
    await run_in_threadpool(authorize, request, instance_id)
    return RedirectResponse(f"{process.path_prefix(instance_id)}/", status_code=307)


async def proxy_http(request: Request) -> Response:
    """Forward one request to the instance's TensorBoard and stream its answer back."""
    if request.method not in SAFE_METHODS and not same_origin(request):
        raise PermissionDenied("Cross-site requests to TensorBoard are refused.")
    target = await run_in_threadpool(authorize, request, int(request.path_params["instance_id"]))
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response(request, 413, "The request is too large for TensorBoard.")
    forwarded = [(k, v) for k, v in request.headers.items() if k.lower() not in DROP_REQUEST]
    # plain HTTP on loopback: no TLS context to build (slow), no proxy variables to obey
    client = httpx.AsyncClient(timeout=TIMEOUT, verify=False, trust_env=False)
    url = httpx.URL(f"http://{process.HOST}:{target.port}").copy_with(
        raw_path=upstream_path(request)
    )
    try:
        upstream = await client.send(
            client.build_request(request.method, url, headers=forwarded, content=body),
            stream=True,
        )
    except httpx.HTTPError:
        await client.aclose()
        return error_response(request, 502, "TensorBoard is not answering yet; try again soon.")
    if _is_plain_html(upstream):
        html = _fix_root_urls(await upstream.aread())
        await _close(upstream, client)
        headers = response_headers(upstream.headers)
        headers.pop("content-length", None)
        return Response(html, status_code=upstream.status_code, headers=headers)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=response_headers(upstream.headers),
        background=BackgroundTask(_close, upstream, client),
    )


def response_headers(upstream: httpx.Headers) -> dict[str, str]:
    """TensorBoard's headers minus hop-by-hop ones, with the TensorBoard-only policy."""
    headers = {k: v for k, v in upstream.items() if k.lower() not in DROP_RESPONSE}
    headers["content-security-policy"] = TENSORBOARD_CSP
    headers["x-frame-options"] = "SAMEORIGIN"
    return headers


def _is_plain_html(upstream: httpx.Response) -> bool:
    """True for uncompressed HTML (TensorBoard's pages, a few hundred KiB at most)."""
    encoding = upstream.headers.get("content-encoding", "identity").lower()
    kind = upstream.headers.get("content-type", "")
    return kind.startswith("text/html") and encoding == "identity"


def _fix_root_urls(html: bytes) -> bytes:
    """TensorBoard's pages name their fonts from the server root (`url(/font-roboto/...)`),
    which misses `--path_prefix`; made relative, they resolve under the prefix."""
    return html.replace(b"url(/font-roboto/", b"url(font-roboto/")


async def _close(upstream: httpx.Response, client: httpx.AsyncClient) -> None:
    await upstream.aclose()
    await client.aclose()


async def proxy_websocket(websocket: WebSocket) -> None:
    """Check a websocket handshake like any request, then relay it to TensorBoard."""
    instance_id = int(websocket.path_params["instance_id"])
    try:
        if not same_origin(websocket):
            raise PermissionDenied("Cross-site websockets are refused.")
        target = await run_in_threadpool(authorize, websocket, instance_id)
    except DomainError:
        await websocket.close(code=POLICY_VIOLATION)  # before accept: the handshake fails
        return
    url = f"ws://{process.HOST}:{target.port}{upstream_path(websocket).decode()}"
    try:
        async with ws_connect(url, open_timeout=5) as upstream:
            await websocket.accept()
            await _relay(websocket, upstream)
    except (OSError, WebSocketException, TimeoutError):
        await websocket.close(code=TRY_AGAIN_LATER)


async def _relay(websocket: WebSocket, upstream: ClientConnection) -> None:
    """Copy messages both ways until either side closes."""

    async def downstream_to_upstream() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                await upstream.send(message.get("text") or message.get("bytes") or b"")
        except WebSocketDisconnect:
            return

    async def upstream_to_downstream() -> None:
        async for data in upstream:
            if isinstance(data, str):
                await websocket.send_text(data)
            else:
                await websocket.send_bytes(data)

    tasks = [
        asyncio.create_task(downstream_to_upstream()),
        asyncio.create_task(upstream_to_downstream()),
    ]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
