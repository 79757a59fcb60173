"""What happened, as subscribers hear it: the hook handlers that the jobs and searches domains
call when a job, a sweep or a search ends (wired in labyard.app.wire_hooks), and the words of
an e-mail about it.

The handlers run inside the caller's write transaction, so they only add outbox rows
(`Delivery`, pending); the delivery worker (labyard.notifications.delivery) sends them after
the transaction committed, woken by an on-commit nudge. No network and no slow work here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, object_session

from labyard.auth.models import User
from labyard.db import utcnow
from labyard.db.oncommit import on_commit
from labyard.jobs.models import FINAL_STATUSES, Job, JobStatus, Sweep
from labyard.notifications.models import Delivery, Event, Subscription
from labyard.notifications.wake import WAKE
from labyard.projects.models import Project, Role
from labyard.projects.service import role_of
from labyard.searches.models import Search, SearchTrial
from labyard.sessions.models import LabSession

Payload = dict[str, Any]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def subscribers(
    db: Session, *, project_id: int, owner_id: int | None, event: str
) -> list[Subscription]:
    """The subscriptions told about `event` of a thing of `project_id` made by `owner_id`:
    the owner's own (while they may still read the project) and the project's (while the
    person who made it still owns the project)."""
    mine = Subscription.project_id.is_(None) & (Subscription.user_id == owner_id)
    rows = db.scalars(
        select(Subscription).where(or_(Subscription.project_id == project_id, mine))
    ).all()
    found = []
    for sub in rows:
        if event not in sub.events:
            continue
        user = db.get(User, sub.user_id)
        role = role_of(db, user, project_id) if user is not None and user.is_active else None
        if role is not None and (sub.project_id is None or role >= Role.OWN):
            found.append(sub)
    return found


def enqueue(db: Session, subs: list[Subscription], event: str, payload: Payload) -> list[Delivery]:
    """Add one pending delivery per subscription; the worker is nudged after commit."""
    body = {"event": event, "created_at": utcnow().isoformat(), **payload}
    rows = [Delivery(subscription_id=sub.id, event=event, payload=body) for sub in subs]
    db.add_all(rows)
    if rows:
        on_commit(db, WAKE.set)
    return rows


def _project(db: Session, project_id: int) -> Payload:
    project = db.get(Project, project_id)
    return {"id": project_id, "name": project.name if project is not None else ""}


def job_payload(db: Session, job: Job) -> Payload:
    """What a subscriber hears about a job."""
    return {
        "project": _project(db, job.project_id),
        "job": {
            "id": job.id,
            "name": job.name,
            "status": job.status,
            "reason": job.reason,
            "exit_code": job.exit_code,
            "sweep_id": job.sweep_id,
            "started_at": _iso(job.started_at),
            "finished_at": _iso(job.finished_at),
            "path": f"/jobs/{job.id}",
        },
    }


def job_ended(job: Job) -> None:
    """jobs.service.JOB_FINISHED: `job` just reached a final status (inside the caller's
    transaction). Tells the job's subscribers, and the sweep's when it was the last job of a
    grid sweep. A lab session's JupyterLab job tells nobody."""
    db = object_session(job)
    if db is None:
        return
    event = Event.JOB_FAILED if job.status == JobStatus.FAILED else Event.JOB_FINISHED
    subs = subscribers(db, project_id=job.project_id, owner_id=job.created_by_id, event=event)
    if subs and db.scalar(select(LabSession.id).where(LabSession.job_id == job.id)) is None:
        enqueue(db, subs, event, job_payload(db, job))
    if job.sweep_id is not None:
        _sweep_ended(db, job.sweep_id)


def _sweep_ended(db: Session, sweep_id: int) -> None:
    sweep = db.get(Sweep, sweep_id)
    if sweep is None or sweep.kind != "sweep":  # a search's sweep ends with its search
        return
    event = Event.SWEEP_FINISHED
    subs = subscribers(db, project_id=sweep.project_id, owner_id=sweep.created_by_id, event=event)
    if not subs:
        return
    rows = db.execute(
        select(Job.status, func.count()).where(Job.sweep_id == sweep_id).group_by(Job.status)
    ).all()
    counts = {str(status): int(n) for status, n in rows}
    if any(status not in FINAL_STATUSES for status in counts):
        return
    body = {"id": sweep.id, "name": sweep.display_name, "counts": counts}
    body["path"] = f"/sweeps/{sweep.id}"
    enqueue(db, subs, event, {"project": _project(db, sweep.project_id), "sweep": body})


def search_ended(db: Session, search: Search) -> None:
    """searches.driver.SEARCH_FINISHED: `search` just concluded (finished or stopped)."""
    event = Event.SEARCH_FINISHED
    subs = subscribers(db, project_id=search.project_id, owner_id=search.created_by_id, event=event)
    if not subs:
        return
    sweep = db.get(Sweep, search.id)
    trials = db.execute(
        select(SearchTrial.state, func.count())
        .where(SearchTrial.search_id == search.id)
        .group_by(SearchTrial.state)
    ).all()
    best = db.scalar(
        select(SearchTrial.value)
        .where(SearchTrial.search_id == search.id, SearchTrial.value.is_not(None))
        .order_by(SearchTrial.value.desc() if _maximise(search) else SearchTrial.value)
        .limit(1)
    )
    body = {
        "id": search.id,
        "name": sweep.display_name if sweep is not None else "",
        "state": search.state,
        "reason": search.reason,
        "trials": {str(state): int(n) for state, n in trials},
        "best_value": best,
        "path": f"/searches/{search.id}",
    }
    enqueue(db, subs, event, {"project": _project(db, search.project_id), "search": body})


def _maximise(search: Search) -> bool:
    return str((search.settings or {}).get("goal", "maximize")).startswith("max")


def describe(payload: Payload, base_url: str) -> tuple[str, str]:
    """An e-mail's subject and text for a delivery's payload."""
    event = str(payload.get("event", ""))
    project = payload.get("project", {}).get("name", "")
    for noun in ("job", "sweep", "search"):
        thing = payload.get(noun)
        if isinstance(thing, dict):
            state = thing.get("status") or thing.get("state") or "finished"
            subject = f"[Labyard] {noun.capitalize()} {thing.get('name', '')} {state}"
            lines = [f"{noun.capitalize()}: {thing.get('name', '')}", f"Project: {project}"]
            lines += [f"{k}: {v}" for k, v in thing.items() if k not in ("name", "path")]
            lines.append(f"Open: {base_url}{thing.get('path', '')}")
            return _one_line(subject), "\n".join(lines) + "\n"
    return "[Labyard] Test notification", f"A test of this subscription ({event}).\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:150]
