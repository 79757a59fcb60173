"""The one place that turns errors into HTTP: JSON under /api, pages or fragments elsewhere."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from labyard.errors import DomainError, Throttled, Unauthenticated
from labyard.web.render import is_htmx, render


def is_api(request: Request) -> bool:
    """True for JSON API requests."""
    return request.url.path.startswith("/api/") or request.url.path == "/healthz"


def error_response(
    request: Request, status: int, message: str, field: str | None = None
) -> Response:
    """The error as JSON (API), as a fragment for htmx into #flash, or as a page."""
    if is_api(request):
        body: dict[str, object] = {"detail": message}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=status)
    context = {"status": status, "message": message, "field": field}
    if is_htmx(request):
        return render(
            request,
            "error.html",
            context,
            block="flash",
            status_code=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    return render(request, "error.html", context, status_code=status)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Unauthenticated) and not is_api(request):
        target = "/login?next=" + quote(request.url.path, safe="/")
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    response = error_response(request, exc.status_code, exc.message, exc.field)
    if isinstance(exc, Unauthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _statement_error(request: Request, exc: Exception) -> Response:
    """A DomainError raised while SQLAlchemy bound a value (db.base.CheckedInteger) arrives
    wrapped; anything else is a real server error."""
    assert isinstance(exc, StatementError)
    if isinstance(exc.orig, DomainError):
        return await _domain_error(request, exc.orig)
    raise exc


def _without_input(error: dict[str, object]) -> dict[str, object]:
    """A validation error without the value that failed: echoing it back would answer
    NaN, Infinity or a lone surrogate, which no JSON response can hold (500), and mirror
    megabytes the client just sent."""
    return {key: value for key, value in error.items() if key not in ("input", "ctx", "url")}


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if is_api(request):
        errors = [_without_input(error) for error in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
    first = exc.errors()[0] if exc.errors() else {}
    message, field = _human_validation_message(first)
    return error_response(request, 422, message, field)


def _human_validation_message(error: dict[str, object]) -> tuple[str, str | None]:
    """A page's message for a validation error, e.g. "Name should have at most 100
    characters.", and the form field it belongs to."""
    loc = [str(part) for part in error.get("loc", ()) or ()][1:]  # type: ignore[attr-defined]
    if not loc:
        return "Invalid input.", None
    field = loc[-1]
    label = " ".join(loc).replace("_", " ").replace("param.", "")
    text = str(error.get("msg", "is invalid"))
    for prefix in ("Value error, ", "String ", "Input "):
        text = text.removeprefix(prefix)
    if error.get("type") == "missing":
        text = "is required"
    text = text[:1].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text
    return f"{label[:1].upper()}{label[1:]} {text.rstrip('.')}.", field


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {404: "Not found.", 405: "Method not allowed."}
    message = str(exc.detail) if exc.detail else messages.get(exc.status_code, "Error.")
    response = error_response(request, exc.status_code, message)
    response.headers.update(exc.headers or {})  # e.g. WWW-Authenticate of a refused body
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StatementError, _statement_error)
