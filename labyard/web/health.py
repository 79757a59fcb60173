"""GET /healthz: version and database status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from labyard import __version__
from labyard.resources import resource_dir
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


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """The icon, for browsers that ask for /favicon.ico whatever the page's link says."""
    return FileResponse(resource_dir("static") / "favicon.svg", media_type="image/svg+xml")
