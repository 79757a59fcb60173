"""GET /metrics: Prometheus' text format (see labyard/monitoring/service.py for who may)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from labyard.monitoring import service
from labyard.web.deps import OptionalUser, SettingsDep, bearer_token, get_database

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, user: OptionalUser, settings: SettingsDep) -> Response:
    """Jobs by status, queue length and waits, GPUs per node, HTTP latency, metric lines
    ingested, TensorBoards and sessions: for admins or the `LABYARD_METRICS_TOKEN` bearer."""
    service.check_scraper(settings, user, bearer_token(request))
    body = await run_in_threadpool(service.exposition, settings, get_database(request))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
