"""GET /docs: Swagger UI served from static/vendor under the CSP (no CDN, no inline script)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from labyard.web.deps import OptionalUser
from labyard.web.render import render

router = APIRouter(include_in_schema=False)
OPENAPI_URL = "/api/v1/openapi.json"
DEEPHEALTH_OPENAPI_URL = "/backend/swagger.json"  # the DeepHealth back-end API's schema


@router.get("/docs")
def docs_page(request: Request, _user: OptionalUser) -> Response:
    """The interactive API reference (the schema itself is public, like FastAPI's default)."""
    return render(request, "docs.html", {"openapi_url": OPENAPI_URL, "deephealth": False})


@router.get("/docs/deephealth")
def deephealth_docs_page(request: Request, _user: OptionalUser) -> Response:
    """The DeepHealth back-end API's reference (its /backend/swagger and /backend/redoc)."""
    context = {"openapi_url": DEEPHEALTH_OPENAPI_URL, "deephealth": True}
    return render(request, "docs.html", context)
