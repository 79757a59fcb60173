"""The /backend application: DeepHealth's REST API as an application of its own (its clients
need DeepHealth's error shapes, bare lists and slash rules), with its login routes, CORS for
any origin's front-end (bearer tokens only) and its swagger paths."""

from __future__ import annotations

import yaml
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Route

from labyard.config import Settings
from labyard.db import Database
from labyard.deephealth import auth, errors
from labyard.deephealth.router import router
from labyard.web.bodies import BEARER_ONLY


def _swagger_page(request: Request) -> RedirectResponse:
    """DeepHealth's /swagger and /redoc: Labyard's API reference page for this API."""
    return RedirectResponse("/docs/deephealth", status_code=307)


def _swagger_yaml(request: Request) -> Response:
    """DeepHealth's /swagger.yaml: the same schema as /swagger.json, as YAML."""
    schema = dict(request.app.openapi())
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    if root_path:  # as FastAPI's /swagger.json says where the API is mounted
        schema.setdefault("servers", [{"url": root_path}])
    return Response(yaml.safe_dump(schema, sort_keys=False), media_type="application/yaml")


def create_deephealth_app(settings: Settings, database: Database) -> FastAPI:
    """The /backend application (mounted by labyard.app.create_app)."""
    app = FastAPI(
        title="DeepHealth back-end API (Labyard)",
        docs_url=None,
        redoc_url=None,
        openapi_url="/swagger.json",
        redirect_slashes=False,
    )
    # bearer tokens only (no cookies), so any origin's front-end may call it
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        max_age=600,
    )
    app.state.settings = settings
    app.state.db = database
    setattr(app.state, BEARER_ONLY, True)  # the body guard asks no CSRF token of it
    app.router.routes.append(Route("/auth/token/", auth.token, methods=["POST"]))
    app.router.routes.append(Route("/auth/token", auth.token, methods=["POST"]))
    for path in ("/auth/revoke-token/", "/auth/revoke-token"):
        app.router.routes.append(Route(path, auth.revoke_token, methods=["POST"]))
    for path, page in (("/swagger", _swagger_page), ("/redoc", _swagger_page)):
        app.router.routes.append(Route(path, page, methods=["GET"]))
    app.router.routes.append(Route("/swagger.yaml", _swagger_yaml, methods=["GET"]))
    app.include_router(auth.router)
    app.include_router(router)
    errors.install(app)
    return app
