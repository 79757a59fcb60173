"""DeepHealth's error bodies, in one place for the /backend application.

DeepHealth's clients read exact keys: `{"Error": ...}` for most refusals, `{"detail": ...}`
for DRF's 401/404/405, `{"<field>": [...]}` for validation, and per-endpoint shapes
(`{"result": ...}`) that the API's service raises as DeepHealthError. Domain errors of the
services below map here the way labyard/web/errors.py maps them for /api/v1.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from labyard.errors import DomainError, NotFound, Throttled, Unauthenticated
from labyard.web.deps import bearer_token

NOT_PROVIDED = "Authentication credentials were not provided."
BAD_TOKEN = "Invalid token header. No credentials provided."


class DeepHealthError(Exception):
    """An answer in DeepHealth's own shape for this endpoint."""

    def __init__(self, status: int, body: dict[str, object]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def refused(message: str, status: int = 400) -> DeepHealthError:
    """`{"Error": message}`, DeepHealth's usual refusal."""
    return DeepHealthError(status, {"Error": message})


def invalid_pk(field: str, value: object) -> DeepHealthError:
    """DRF's answer for a foreign key that names nothing (or nothing the caller may see)."""
    return DeepHealthError(400, {field: [f'Invalid pk "{value}" - object does not exist.']})


def unauthenticated(request: Request) -> JSONResponse:
    """DRF's 401: no credentials, or a bearer token that is not live."""
    message = BAD_TOKEN if bearer_token(request) is not None else NOT_PROVIDED
    return JSONResponse(
        {"detail": message}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="api"'}
    )


async def _deephealth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeepHealthError)
    return JSONResponse(exc.body, status_code=exc.status)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Unauthenticated):
        return unauthenticated(request)
    if isinstance(exc, NotFound):
        return JSONResponse({"detail": "Not found."}, status_code=404)
    response = JSONResponse({"Error": exc.message}, status_code=exc.status_code)
    if exc.status_code == 422:  # DeepHealth answers every input error with 400
        response.status_code = 400
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    """DRF's shape: {"field": ["message", ...]}, or {"Error": ...} for a body that is no JSON."""
    assert isinstance(exc, RequestValidationError)
    body: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid" or loc in (["body"], []):
            return JSONResponse({"Error": "The request body must be a JSON object."}, 400)
        field = loc[1] if len(loc) > 1 and loc[0] == "body" else loc[-1]
        message = "This field is required." if error.get("type") == "missing" else error["msg"]
        body.setdefault(field, []).append(str(message))
    return JSONResponse(body, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 401 or (exc.status_code == 403 and bearer_token(request) is None):
        return unauthenticated(request)  # the body guard refused a body without credentials
    if exc.status_code == 404:
        return JSONResponse({"detail": "Not found."}, status_code=404)
    if exc.status_code == 405:
        detail = f'Method "{request.method}" not allowed.'
        return JSONResponse({"detail": detail}, status_code=405, headers=exc.headers)
    status = 400 if exc.status_code == 422 else exc.status_code
    return JSONResponse({"Error": str(exc.detail)}, status_code=status, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Register DeepHealth's error shapes on the /backend application."""
    app.add_exception_handler(DeepHealthError, _deephealth_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
