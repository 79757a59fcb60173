"""Every /api/v1 route is listed in OpenAPI, and the pages the issue names have their twin."""

from __future__ import annotations

import fastapi.routing
from fastapi import FastAPI

from labyard.web.docs import OPENAPI_URL
from tests.factories import WebClient

# Page actions whose JSON twins were once hidden from the schema (issue 10).
TWINS = {
    ("post", "/api/v1/jobs/{job_id}/output-as-dataset"),
    ("post", "/api/v1/jobs/bulk"),
    ("get", "/api/v1/sweeps/{sweep_id}/compare"),
    ("get", "/api/v1/sweeps/{sweep_id}/curves"),
    ("get", "/api/v1/jobs/{job_id}/log/search"),
    ("get", "/api/v1/jobs/{job_id}/files"),
    ("get", "/api/v1/jobs/{job_id}/files/{path}"),
    ("get", "/api/v1/overview"),  # the home page (issue 11)
    ("get", "/api/v1/projects/{project_id}/overview"),
    ("get", "/api/v1/nodes"),  # the Nodes page (issue 13)
    ("post", "/api/v1/labs/{lab_id}/session"),  # lab sessions (issue 12)
    ("get", "/api/v1/labs/{lab_id}/session"),
    ("delete", "/api/v1/labs/{lab_id}/session"),
    ("post", "/api/v1/labs/{lab_id}/session/restart"),
    ("post", "/api/v1/labs/{lab_id}/session/keep"),
    ("get", "/api/v1/sessions"),
    ("get", "/api/v1/notifications"),  # the settings page's notifications (issue 17)
    ("post", "/api/v1/notifications"),
    ("delete", "/api/v1/notifications/{subscription_id}"),
    ("post", "/api/v1/notifications/{subscription_id}/test"),
    ("get", "/api/v1/notifications/{subscription_id}/deliveries"),
    ("patch", "/api/v1/jobs/{job_id}"),  # the job page's priority (issue 17)
    ("get", "/api/v1/quotas"),  # the admin page's GPU quotas (issue 17)
    ("put", "/api/v1/quotas/projects/{project_id}"),
    ("put", "/api/v1/quotas/users/{user_id}"),
    ("get", "/api/v1/admin/deephealth-clients"),  # the admin page's DeepHealth clients
    ("post", "/api/v1/admin/deephealth-clients"),
    ("delete", "/api/v1/admin/deephealth-clients/{client_id}"),
    ("get", "/api/v1/weights"),  # the Weights pages (issue 16)
    ("post", "/api/v1/weights"),  # "Register as weights" (job page, Weights page)
    ("get", "/api/v1/weights/{weights_id}"),
    ("patch", "/api/v1/weights/{weights_id}"),  # edit, publish
    ("delete", "/api/v1/weights/{weights_id}"),
    ("get", "/api/v1/weights/{weights_id}/download"),
    ("post", "/api/v1/weights/{weights_id}/inference"),  # the weights page's Inference form
    ("post", "/api/v1/weights/{weights_id}/try"),  # "Try one image"
    ("post", "/api/v1/weights/{weights_id}/inference/uploads"),  # the Inference form's images
}


def _served_routes(app: FastAPI) -> list[tuple[str, set[str]]]:
    """(path, methods) of every HTTP route the app serves, through included routers."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)  # FastAPI >= 0.130
    routes = iterate(app.routes) if iterate else app.routes
    return [(r.path_format, set(r.methods)) for r in routes if getattr(r, "methods", None)]


def _api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) under /api/v1 but the schema itself."""
    return {
        (method.lower(), path)
        for path, methods in _served_routes(app)
        if path.startswith("/api/v1/") and path != OPENAPI_URL
        for method in methods - {"HEAD"}
    }


def _schema_routes(app: FastAPI) -> set[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return {(method, path) for path, ops in paths.items() for method in ops}


def test_every_api_route_is_in_the_schema(app: FastAPI) -> None:
    routes = _api_routes(app)
    assert len(routes) > 40  # the whole API, not an empty set compared with itself
    missing = routes - _schema_routes(app)
    assert not missing, f"/api/v1 routes missing from OpenAPI: {sorted(missing)}"


def test_the_pages_twins_are_routes_and_in_the_schema(app: FastAPI) -> None:
    assert _api_routes(app) >= TWINS
    assert _schema_routes(app) >= TWINS


def test_the_schema_served_to_a_client_lists_the_twins(web: WebClient) -> None:
    schema = web.get(OPENAPI_URL)
    assert schema.status_code == 200
    served = {(m, p) for p, ops in schema.json()["paths"].items() for m in ops}
    assert served >= TWINS
