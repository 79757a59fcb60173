"""What the reverse proxies to sandboxed tools share (TensorBoard, a lab's JupyterLab).

Both serve other people's pages, so neither ever runs on Labyard's origin: every answer carries
`Content-Security-Policy: sandbox ...` without `allow-same-origin`, the browser reaches the tool
through a capability link (labyard/tensorboard/links.py) from origin `null`, Labyard's
credentials never go upstream, and the tool's cookies, CORS and framing headers never come
back. Read labyard/tensorboard/proxy.py for the whole story; this module holds the pieces.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection

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
# never passed back: the tool's own policy (it may allow any frame ancestor), cookies, CORS
DROP_RESPONSE = HOP_BY_HOP | {
    "content-security-policy",
    "x-frame-options",
    "set-cookie",
    "server",
    "access-control-allow-origin",
    "access-control-allow-credentials",
}
OPAQUE_ORIGIN = "null"
# The tools need cookies, storage and workers, which an opaque origin lacks: a small script,
# loaded before any of theirs, stands in for them (read it for what it does).
SANDBOX_SHIM = b'<script src="/static/js/tensorboard_sandbox.js"></script>'
HEAD_TAG = re.compile(rb"<head(\s[^>]*)?>", re.IGNORECASE)
MAX_BODY = 10 * 1024 * 1024
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def sandbox_csp(sandbox: str) -> str:
    """The policy of every proxied answer: the sandbox flags given, inline and evaluated
    scripts and inline styles only inside it ('self' is the URL's origin: the sandboxed page
    may load from and query its own proxy, nothing else)."""
    return (
        f"sandbox {sandbox}; "
        "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
        "style-src 'self' 'unsafe-inline' data:; img-src 'self' data: blob:; "
        "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-src 'self'; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    )


def same_origin(conn: HTTPConnection) -> bool:
    """False when the browser says the request comes from another site."""
    origin = conn.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == conn.headers.get("host", "")


def link_origin_allowed(conn: HTTPConnection) -> bool:
    """A link's request comes from the sandboxed page (origin `null`), this site, or no browser."""
    return conn.headers.get("origin") in (None, OPAQUE_ORIGIN) or same_origin(conn)


def websocket_origin_allowed(websocket: WebSocket, token: str | None) -> bool:
    """A handshake comes from this site, or from the sandboxed page on a link."""
    origin = websocket.headers.get("origin")
    return same_origin(websocket) or bool(token and origin == OPAQUE_ORIGIN)


def link_headers(request: Request) -> dict[str, str]:
    """CORS for the sandboxed page (origin `null`, no credentials) and no Referer leaks."""
    headers = {"vary": "Origin", "referrer-policy": "no-referrer"}
    if request.headers.get("origin") == OPAQUE_ORIGIN:
        headers["access-control-allow-origin"] = OPAQUE_ORIGIN
    return headers


def link_error(request: Request, status: int, message: str, csp: str) -> Response:
    """A refusal the sandboxed page can read (no login page: it has no cookies to log in)."""
    response = PlainTextResponse(message, status_code=status)
    response.headers.update(link_headers(request))
    response.headers["content-security-policy"] = csp
    return response


def preflight(request: Request, methods: str) -> Response:
    """Answer a CORS preflight of the sandboxed page for its own (token-checked) link."""
    asked = request.headers.get("access-control-request-headers", "")[:1000]
    headers = link_headers(request) | {
        "access-control-allow-methods": methods,
        "access-control-allow-headers": asked,
        "access-control-max-age": "600",
    }
    return Response(status_code=204, headers=headers)


def is_plain_html(upstream: httpx.Response) -> bool:
    """True for uncompressed HTML (the tools' pages: rewritten before they are sent on)."""
    encoding = upstream.headers.get("content-encoding", "identity").lower()
    kind = upstream.headers.get("content-type", "")
    return kind.startswith("text/html") and encoding == "identity"


def with_shim(html: bytes) -> bytes:
    """The page with SANDBOX_SHIM first in its head."""
    head = HEAD_TAG.search(html)
    at = head.end() if head else 0
    return html[:at] + SANDBOX_SHIM + html[at:]


# per event loop (a client belongs to the loop it was made in): upstream address -> client
_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, OrderedDict[str, httpx.AsyncClient]
] = weakref.WeakKeyDictionary()
MAX_CLIENTS = 256  # upstreams kept open at once (sessions and TensorBoards); LRU beyond


def pooled_client(address: str, make: Callable[[], httpx.AsyncClient]) -> httpx.AsyncClient:
    """The keep-alive client to one upstream `address` (made by `make` the first time), so a
    page's hundred requests reuse connections instead of opening one each. Clients belong to
    the running event loop; the least recently used beyond MAX_CLIENTS are closed."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, OrderedDict())
    client = clients.get(address)
    if client is None or client.is_closed:
        client = clients[address] = make()
    clients.move_to_end(address)
    while len(clients) > MAX_CLIENTS:
        _, old = clients.popitem(last=False)
        loop.create_task(old.aclose())
    return client


async def forward(
    request: Request,
    client: httpx.AsyncClient,
    outgoing: httpx.Request,
    tool: str,
    *,
    answer_headers: Callable[[httpx.Headers], dict[str, str]],
    fix_html: Callable[[bytes], bytes],
) -> Response:
    """Send `outgoing` and stream the answer back with `answer_headers`; HTML pages are read
    whole and passed through `fix_html`."""
    try:
        upstream = await client.send(outgoing, stream=True)
    except (httpx.HTTPError, OSError):
        return error_response(request, 502, f"{tool} is not answering yet; try again soon.")
    headers = answer_headers(upstream.headers)
    if is_plain_html(upstream):
        page = fix_html(await upstream.aread())
        await upstream.aclose()
        headers.pop("content-length", None)
        return Response(page, status_code=upstream.status_code, headers=headers)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=headers,
        background=BackgroundTask(upstream.aclose),
    )


async def relay(websocket: WebSocket, upstream: ClientConnection) -> None:
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
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in done:  # a side that went away first ends the relay; that is no error
        task.exception()
