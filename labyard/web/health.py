"""GET /healthz: version and database status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from labyard import __version__
from labyard.web.deps import get_database

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 with the version when the database answers, else 503."""
    ok = get_database(request).ping()
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "database": "ok" if ok else "unreachable",
    }
    return JSONResponse(body, status_code=200 if ok else 503)
