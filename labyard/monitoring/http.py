"""HTTP request latency for Prometheus: a plain ASGI middleware that times every request by
method, route template (`/api/v1/jobs/{job_id}`, never the raw path, so a scraper's series
stay few) and status class."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_SECONDS = Histogram(
    "labyard_http_request_duration_seconds",
    "Time from a request's start to its response's end, by route template.",
    ("method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def route_template(app: Any, scope: Scope) -> str:
    """The path template of the route `scope` matched ("other" when none: 404s and
    mounted static files stay one series)."""
    matched = scope.get("route")  # FastAPI's routes note themselves in the scope
    if matched is not None:
        return str(getattr(matched, "path", "other"))
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "other"))
    return "other"


class LatencyMiddleware:
    """Observe each HTTP request's duration in REQUEST_SECONDS (websockets are not timed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = route_template(scope.get("app"), scope)
            REQUEST_SECONDS.labels(scope["method"], route, f"{status // 100}xx").observe(
                time.perf_counter() - start
            )
