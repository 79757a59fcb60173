"""The jobs pages: jobs lists (all my projects, one project), the job page with its live
stream, log download and search, output files, page actions (one job or a selection), the
sweep page. Their JSON twins (bulk actions, sweep comparison, curves, files, log search)
are the `api` router below, which create_app includes beside `router` so OpenAPI lists them.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.jobs import ansi, artifacts, listing, live, preemption, priority, service, views
from labyard.jobs.models import Job, JobStatus
from labyard.jobs.priority import PriorityName
from labyard.numbers import ascii_int
from labyard.projects.models import Role
from labyard.projects.service import require_project, role_of
from labyard.web import viewer
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep, get_database
from labyard.web.render import is_htmx, render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["jobs"])
NAV_LINKS = [("Jobs", "/jobs")]
TABS = ("metrics", "log", "config", "files", "summary")


# --------------------------------------------------------------------------- lists


def _filters(request: Request, settings: Settings, project_id: int | None) -> listing.JobFilters:
    q = request.query_params
    status, lab_id, sweep_id = q.get("status", ""), q.get("lab_id", ""), q.get("sweep_id", "")
    return listing.JobFilters(
        project_id=project_id,
        lab_id=ascii_int(lab_id),
        sweep_id=ascii_int(sweep_id),
        status=JobStatus(status) if status in set(JobStatus) else None,
        sort=q.get("sort", "id"),
        descending=q.get("order", "desc") != "asc",
        page=ascii_int(q.get("page", "")) or 1,
        per_page=settings.jobs_per_page,
        after=q.get("after") or None,
        before=q.get("before") or None,
        last=q.get("last") == "1",
        fair_share_days=settings.fair_share_days,
    )


def _list(
    request: Request, db: SessionDep, user: User, settings: Settings, project_id: int | None
) -> Response:
    q = request.query_params
    page = listing.jobs_page(db, user, filters=_filters(request, settings, project_id))
    project = require_project(db, user, project_id) if project_id is not None else None
    role = role_of(db, user, project_id) if project_id is not None else None
    context = {
        "page": page,
        "project": project,
        "can_write": project is None or (role is not None and role >= Role.WRITE),
        "statuses": list(JobStatus),
        "base_url": request.url.path,
        "query": {k: v for k, v in q.items() if k not in ("after", "before", "last", "page")},
        "current_query": dict(q),
    }
    block = (
        "table" if is_htmx(request) and request.headers.get("hx-target") == "jobs-table" else None
    )
    return render(request, "jobs.html", context, block=block)


@router.get("/jobs")
def all_jobs_page(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Jobs of every project I can see."""
    return _list(request, db, user, settings, None)


@router.get("/projects/{project_id}/jobs")
def project_jobs_page(
    request: Request, project_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """One project's jobs."""
    return _list(request, db, user, settings, project_id)


@router.get("/jobs/events")
def jobs_events(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    ids: Annotated[str, Query(max_length=20_000)] = "",
) -> Response:
    """Live row updates for the jobs a list page shows (server-sent events)."""
    job_ids = views.parse_ids([ids], field="ids")[:1000]
    user_id = user.id
    database = get_database(request)
    stream = live.rows_events(
        request,
        lambda: live.poll_rows(database, user_id, job_ids, settings.fair_share_days),
        poll_seconds=settings.live_list_poll_seconds,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=live.HEADERS)


def _bulk(
    db: SessionDep, user: User, settings: Settings, action: str, ids: list[int]
) -> list[views.BulkResult]:
    return views.bulk_action(db, user, action=action, job_ids=ids, settings=settings)


@router.post("/jobs/bulk")
def bulk_page_action(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    action: Annotated[str, Form()],
    job_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Stop, delete or retry the selected jobs; the list reloads its table."""
    results = _bulk(db, user, settings, action, views.parse_ids(job_ids or [], field="job_ids"))
    failed = [r for r in results if not r.ok]
    context = {"action": action, "done": len(results) - len(failed), "failed": failed}
    return render(
        request,
        "jobs_table.html",
        context,
        block="bulk_result",
        headers={"HX-Trigger": "jobs-changed"},
    )


# --------------------------------------------------------------------------- one job


def _job_context(db: SessionDep, user: User, settings: Settings, job: Job) -> dict[str, Any]:
    position = views.queue_positions(db, [job], settings.fair_share_days).get(job.id)
    lines, log_offset = artifacts.log_tail(settings, job.id, lines=settings.log_tail_lines)
    charts = views.chart_data(db, job.id, max_points=settings.chart_max_points)
    files, files_cut = artifacts.list_outputs(settings, job.id)
    role = role_of(db, user, job.project_id)
    boot = {
        "job_id": job.id,
        "cursor": str(live.Cursor(log_offset, charts["last_id"])),
        "state": views.row_state(job, position),
        "series": charts["series"],
        "max_points": settings.chart_max_points,
    }
    return {
        "job": job,
        "project": require_project(db, user, job.project_id),
        "sweep": db.get(service.Sweep, job.sweep_id) if job.sweep_id else None,
        "lab": _lab_of(db, job),
        "state": boot["state"],
        "log_lines": ansi.log_lines(lines),
        "boot": boot,
        "config_text": artifacts.config_text(settings, job.id),
        "command_line": artifacts.command_line(job.command),
        "files": files,
        "files_cut": files_cut,
        "summary": artifacts.model_summary(settings, job.id),
        "attempts": preemption.attempts_of(db, job.id),
        "can_write": role is not None and role >= Role.WRITE,
        "tabs": TABS,
    }


def _lab_of(db: Session, job: Job) -> views.LabRef | None:
    """The job's lab, or None (no lab, or the lab was deleted)."""
    if job.lab_id is None:
        return None
    return next(iter(views.find_labs(db, [job.project_id], job.lab_id)), None)


@router.get("/jobs/{job_id}")
def job_page(
    request: Request, job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """One job: top panel, then metrics, log, config, files and summary tabs, all live."""
    job = service.get_job(db, user, job_id)
    return render(request, "job.html", _job_context(db, user, settings, job))


@router.get("/jobs/{job_id}/events")
def job_events(
    request: Request,
    job_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    cursor: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The job page's one live stream; `Last-Event-ID` (or `cursor`) resumes it exactly."""
    service.get_job(db, user, job_id)
    start = live.Cursor.parse(request.headers.get("last-event-id")) or live.Cursor.parse(cursor)
    stream = live.job_events(
        request,
        get_database(request),
        job_id,
        artifacts.log_path(settings, job_id),
        start or live.Cursor(),
        poll_seconds=settings.live_poll_seconds,
        db_poll_seconds=settings.live_db_poll_seconds,
        fair_share_days=settings.fair_share_days,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=live.HEADERS)


@router.get("/jobs/{job_id}/log.txt")
def download_log(job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> Response:
    """The whole log as the job wrote it (time stamps included)."""
    service.get_job(db, user, job_id)
    path = artifacts.log_path(settings, job_id)
    if not path.is_file():
        return Response(b"", media_type="text/plain; charset=utf-8")
    return FileResponse(path, media_type="text/plain; charset=utf-8", filename=f"job-{job_id}.log")


@router.get("/jobs/{job_id}/files/{path:path}")
def download_output(
    job_id: int, path: str, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Download one of the job's output files."""
    return _download_output(db, user, settings, job_id, path)


def _download_output(
    db: SessionDep, user: User, settings: Settings, job_id: int, path: str
) -> Response:
    service.get_job(db, user, job_id)
    target = artifacts.output_file(settings, job_id, path)
    return FileResponse(target, filename=target.name, media_type="application/octet-stream")


@router.get("/jobs/{job_id}/view/{path:path}")
def view_output(
    request: Request,
    job_id: int,
    path: str,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """One output file in the viewer (a fragment for the files tab, else a page)."""
    job = service.get_job(db, user, job_id)
    target = artifacts.output_file(settings, job_id, path)
    quoted = quote(path)
    view = viewer.view_file(
        target,
        name=path,
        raw_url=f"/jobs/{job_id}/raw/{quoted}",
        download_url=f"/jobs/{job_id}/files/{quoted}",
    )
    block = "viewer" if is_htmx(request) else None
    return render(request, "job_file.html", {"job": job, "view": view}, block=block)


@router.get("/jobs/{job_id}/raw/{path:path}")
def raw_output(
    job_id: int, path: str, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """An output image's bytes, shown inline by the viewer (other files: download them)."""
    service.get_job(db, user, job_id)
    return viewer.inline_image(artifacts.output_file(settings, job_id, path))


@router.post("/jobs/{job_id}/stop")
def stop_page_action(job_id: int, user: CurrentUser, db: SessionDep) -> Response:
    """Stop the job; the page's live stream shows the change."""
    service.stop_job(db, user, job_id)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/priority")
def priority_page_action(
    request: Request,
    job_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    chosen: Annotated[PriorityName, Form(alias="priority")],
) -> Response:
    """Change a queued job's priority; twin: PATCH /api/v1/jobs/{job_id}."""
    job = priority.set_job_priority(db, user, job_id, chosen)
    db.flush()
    context = _job_context(db, user, settings, job)
    return render(request, "job.html", context, block="priority")


@router.post("/jobs/{job_id}/retry")
def retry_page_action(
    job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Queue a copy of the job and open its page."""
    new = service.retry_job(db, user, job_id, settings=settings)
    return Response(status_code=204, headers={"HX-Redirect": f"/jobs/{new.id}"})


@router.post("/jobs/{job_id}/delete")
def delete_page_action(
    job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Delete the job and go to its project's jobs."""
    project_id = service.get_job(db, user, job_id).project_id
    service.delete_job(db, user, job_id, settings=settings)
    return Response(status_code=204, headers={"HX-Redirect": f"/projects/{project_id}/jobs"})


# --------------------------------------------------------------------------- sweeps


@router.get("/sweeps/{sweep_id}")
def sweep_page(
    request: Request, sweep_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """A sweep: every job's params and final/best metrics, curves overlaid, best highlighted."""
    comparison = views.compare_sweep(db, user, sweep_id)
    context = {
        "c": comparison,
        "compare": compare_body(comparison),  # the parallel coordinates' data, no 2nd request
        "project": require_project(db, user, comparison.sweep.project_id),
        "counts": service.sweep_counts(db, sweep_id),
    }
    return render(request, "sweep.html", context)


# --------------------------------------------------------------------------- JSON twins


class BulkIn(BaseModel):
    """A bulk action on jobs."""

    action: str = Field(description="stop, delete or retry")
    job_ids: list[int] = Field(max_length=1000)


class BulkOut(BaseModel):
    """The outcome for each job."""

    results: list[dict[str, Any]]


@api.post("/jobs/bulk", response_model=BulkOut)
def bulk_api(body: BulkIn, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> BulkOut:
    """Stop, delete or retry several jobs; each job's outcome is reported (WRITE per job)."""
    results = _bulk(db, user, settings, body.action, body.job_ids)
    return BulkOut(results=[r.__dict__ for r in results])


@api.get("/sweeps/{sweep_id}/compare")
def compare_api(sweep_id: int, user: CurrentUser, db: SessionDep) -> dict[str, Any]:
    """Every job of a sweep: params, status, latest and best value of every metric."""
    return compare_body(views.compare_sweep(db, user, sweep_id))


def compare_body(c: views.SweepComparison) -> dict[str, Any]:
    """A sweep comparison as JSON: each job's params, status, latest and best metrics."""
    jobs = [
        {
            "id": j.id,
            "name": j.name,
            "status": j.status,
            "params": j.params,
            "metrics": {
                n: {"latest": s.latest, "best": s.best} for n, s in c.metrics.get(j.id, {}).items()
            },
        }
        for j in c.jobs
    ]
    best = c.best_job_id
    return {"sweep_id": c.sweep.id, "primary": c.primary, "best_job_id": best, "jobs": jobs}


@api.get("/sweeps/{sweep_id}/curves")
def curves_api(
    sweep_id: int,
    user: CurrentUser,
    db: SessionDep,
    metric: Annotated[str, Query(max_length=100)],
    points: Annotated[int, Query(ge=2, le=10_000)] = 300,
) -> dict[str, Any]:
    """One downsampled curve of `metric` per job of the sweep."""
    curves = views.sweep_curves(db, user, sweep_id, metric=metric, max_points=points)
    return {"metric": metric, "curves": curves}


@api.get("/jobs/{job_id}/log/search")
def search_log_api(
    job_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=artifacts.MAX_QUERY)],
) -> dict[str, Any]:
    """Lines of the job's whole log containing `q` (case-insensitive; at most 1000)."""
    service.get_job(db, user, job_id)
    result = artifacts.search_log(settings, job_id, q)
    rendered = ansi.log_lines([t for _, t in result.matches])
    matches = [
        {"line": n, "text": t, "html": line.div()}
        for (n, t), line in zip(result.matches, rendered, strict=True)
    ]
    return {"matches": matches, "truncated": result.truncated}


@api.get("/jobs/{job_id}/files")
def list_files_api(
    job_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """The job's output files (path, size)."""
    service.get_job(db, user, job_id)
    files, cut = artifacts.list_outputs(settings, job_id)
    return {"files": [f.__dict__ for f in files], "truncated": cut}


@api.get("/jobs/{job_id}/files/{path:path}")
def download_file_api(
    job_id: int, path: str, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Download one output file."""
    return _download_output(db, user, settings, job_id, path)
