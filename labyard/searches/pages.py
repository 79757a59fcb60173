"""The search page: state, settings, trial counts, the best trial, the charts (best so far,
every trial's curve, parallel coordinates, importances) and the trials table; Stop, Resume
with more trials and "Submit best as a job". Each action calls the service function its
`/api/v1/searches/...` twin calls (labyard.searches.router); an htmx request of the page
gets its `live` block, which the page polls every 10 s while the search runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.errors import InvalidInput
from labyard.jobs import views
from labyard.jobs.models import Job, Sweep
from labyard.jobs.service import list_jobs
from labyard.numbers import ascii_int
from labyard.projects.models import Role
from labyard.projects.service import require_project, role_of
from labyard.searches import service
from labyard.searches.models import Search, SearchState, SearchTrial
from labyard.searches.router import search_out, trial_out
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import is_htmx, render

router = APIRouter(include_in_schema=False)
LIVE_STATES = (SearchState.RUNNING, SearchState.STOPPING)
SHOWN_SETTINGS = ("algorithm", "metric", "goal", "early_stopping", "resource")


def _trial_rows(trials: list[SearchTrial], jobs: dict[int, Job]) -> list[dict[str, Any]]:
    """Each trial as the API shows it (JSON-able)."""
    return [trial_out(t, jobs.get(t.job_id or -1)).model_dump(mode="json") for t in trials]


def _boot(search: dict[str, Any], trials: list[dict[str, Any]], jobs: dict[int, Job]) -> Any:
    """What the page's charts draw: the search, its trials, each trial's label."""
    labels = {
        str(t["number"]): jobs[t["job_id"]].sweep_label
        if t["job_id"] in jobs
        else f"#{t['number'] + 1}"
        for t in trials
    }
    return {"search": search, "trials": trials, "labels": labels}


def _context(db: Session, user: User, search: Search) -> dict[str, Any]:
    found, jobs = service.trials_of(db, search.id), service.jobs_of(db, search.id)
    out = search_out(db, search, found, jobs).model_dump(mode="json")
    trials = _trial_rows(found, jobs)
    counts = out["counts"]
    ended = counts["complete"] + counts["pruned"] + counts["failed"]
    role = role_of(db, user, search.project_id)
    lab = (
        next(iter(views.find_labs(db, [search.project_id], search.lab_id)), None)
        if search.lab_id is not None
        else None
    )
    return {
        "search": search,
        "s": out,
        "sweep": db.get(Sweep, search.id),
        "project": require_project(db, user, search.project_id),
        "lab": lab,
        "trials": trials,
        "jobs": jobs,
        "params": [n for n, p in search.space.items() if p.get("kind") != "fixed"],
        "ended": ended,
        "fraction": ended / search.trials_wanted if search.trials_wanted else None,
        "live": search.state in LIVE_STATES,
        "can_write": role is not None and role >= Role.WRITE,
        "shown_settings": SHOWN_SETTINGS,
        "boot": _boot(out, trials, jobs),
    }


def _live(request: Request, db: Session, user: User, search: Search) -> Response:
    """The page's `live` block (counts, best trial, trials, chart data) after an action."""
    return render(request, "search.html", _context(db, user, search), block="live")


@router.get("/searches/{search_id}")
def search_page(request: Request, search_id: int, user: CurrentUser, db: SessionDep) -> Response:
    """A search: its settings and state, trial counts, best trial, charts and trials; an
    htmx request gets the `live` block only (the page's refresh every 10 s)."""
    search = service.get_search(db, user, search_id)
    if is_htmx(request) and request.headers.get("hx-target") == "search-live":
        return _live(request, db, user, search)
    return render(request, "search.html", _context(db, user, search))


@router.post("/searches/{search_id}/stop")
def stop_action(request: Request, search_id: int, user: CurrentUser, db: SessionDep) -> Response:
    """Stop the search (the twin of POST /api/v1/searches/{id}/stop)."""
    search = service.stop_search(db, user, search_id)
    db.flush()
    return _live(request, db, user, search)


@router.post("/searches/{search_id}/resume")
def resume_action(
    request: Request,
    search_id: int,
    user: CurrentUser,
    db: SessionDep,
    trials: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Run more trials (the twin of POST /api/v1/searches/{id}/resume)."""
    more = ascii_int(trials.strip())
    if more is None or more < 1:
        raise InvalidInput(
            "Give how many more trials to run: a whole number from 1.", field="trials"
        )
    search = service.resume_search(db, user, search_id, more_trials=more)
    db.flush()
    return _live(request, db, user, search)


@router.post("/searches/{search_id}/submit-best")
def submit_best_action(
    search_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Run the best trial's params again as a job and open it (the twin of
    POST /api/v1/searches/{id}/submit-best)."""
    sweep = service.submit_best(db, user, settings, search_id)
    jobs = list_jobs(db, user, sweep_id=sweep.id)
    target = f"/jobs/{jobs[0].id}" if len(jobs) == 1 else f"/sweeps/{sweep.id}"
    return Response(status_code=204, headers={"HX-Redirect": target})
