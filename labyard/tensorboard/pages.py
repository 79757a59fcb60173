"""The tensorboard pages (list, open forms, the waiting page) and the proxy routes.

Buttons elsewhere (job and sweep pages) open a TensorBoard by posting `job_ids` (one field
per job, or comma-separated) or `sweep_id` to `/tensorboards/open`; the answer sends the
browser to `/tensorboards/<id>`, which shows a spinner until TensorBoard answers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute

from labyard.jobs.views import parse_ids
from labyard.tensorboard import links, proxy, service
from labyard.tensorboard.models import TensorBoardInstance
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import is_htmx, render

router = APIRouter(include_in_schema=False)
NAV_LINKS = [("TensorBoard", "/tensorboards")]
PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
LINK_PATH = "/tensorboard/{instance_id:int}/~{token}/{path:path}"

# Plain Starlette routes: each request is checked inside (see labyard/tensorboard/proxy.py).
router.routes.extend(
    [
        # a link's requests (the sandboxed page) first: `~` never starts a TensorBoard path
        Route(LINK_PATH, proxy.proxy_link, methods=PROXY_METHODS),
        WebSocketRoute(LINK_PATH, proxy.proxy_websocket),
        Route("/tensorboard/{instance_id:int}", proxy.redirect_to_slash, methods=["GET", "HEAD"]),
        Route(
            "/tensorboard/{instance_id:int}/{path:path}", proxy.proxy_http, methods=PROXY_METHODS
        ),
        WebSocketRoute("/tensorboard/{instance_id:int}/{path:path}", proxy.proxy_websocket),
    ]
)


def _go_to(request: Request, instance: TensorBoardInstance) -> Response:
    """Send the browser to the instance's waiting page (htmx or a plain form)."""
    target = f"/tensorboards/{instance.id}"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _list_context(db: SessionDep, user: CurrentUser) -> dict[str, object]:
    instances = service.list_instances(db, user)
    stoppable = {i.id for i in instances if service.can_stop(db, user, i)}
    return {"instances": instances, "stoppable": stoppable}


@router.get("/tensorboards")
def tensorboards_page(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    """Running TensorBoards, and forms to open one for jobs or a chosen log dir."""
    return render(request, "tensorboards.html", _list_context(db, user))


@router.post("/tensorboards/open")
def open_for_jobs(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    job_ids: Annotated[list[str] | None, Form()] = None,
    sweep_id: Annotated[int | None, Form()] = None,
) -> Response:
    """Open (or reuse) the TensorBoard of some jobs or of a sweep, then go to it."""
    if sweep_id is not None:
        instance = service.open_for_sweep(db, settings, user, sweep_id)
    else:
        ids = parse_ids(job_ids or [], field="job_ids")
        instance = service.open_for_jobs(db, settings, user, ids)
    return _go_to(request, instance)


@router.post("/tensorboards/logdir")
def open_for_logdir(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    source: Annotated[Literal["lab", "job"], Form()],
    source_id: Annotated[int, Form()],
    path: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """Open (or reuse) a TensorBoard for a folder inside a lab's or a job's files."""
    instance = service.open_for_logdir(
        db, settings, user, source=source, source_id=source_id, path=path
    )
    return _go_to(request, instance)


@router.get("/tensorboards/{instance_id}")
def tensorboard_page(
    request: Request, instance_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The waiting page: a spinner until TensorBoard answers, then TensorBoard in a
    sandboxed frame (its link made for this browser session)."""
    context = _page_context(request, db, settings, user, instance_id)
    return render(request, "tensorboard.html", context)


@router.get("/tensorboards/{instance_id}/status")
def tensorboard_status(
    request: Request, instance_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The waiting page's fragment, polled every second while TensorBoard starts."""
    context = _page_context(request, db, settings, user, instance_id)
    return render(request, "tensorboard.html", context, block="status")


def _page_context(
    request: Request, db: SessionDep, settings: SettingsDep, user: CurrentUser, instance_id: int
) -> dict[str, object]:
    state = service.readiness(db, settings, user, instance_id)
    web_session = getattr(request.state, "web_session", None)
    # without a browser session (a bearer token) there is no link: the page has no frame
    frame_url = links.frame_url(settings, instance_id, web_session) if web_session else ""
    return {"state": state, "frame_url": frame_url, "sandbox": proxy.SANDBOX}


@router.post("/tensorboards/{instance_id}/stop")
def stop_tensorboard(
    request: Request, instance_id: int, user: CurrentUser, db: SessionDep
) -> Response:
    """Stop a TensorBoard; htmx gets the refreshed list."""
    service.stop_instance(db, user, instance_id)
    if not is_htmx(request):
        return RedirectResponse("/tensorboards", status_code=303)
    return render(request, "tensorboards.html", _list_context(db, user), block="list")
