"""The searches JSON API: read a search and its trials, stop it, resume it, submit its best
trial as a job. Starting one is the lab's (`POST /api/v1/labs/{id}/searches`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from labyard.jobs.models import Job, Sweep
from labyard.jobs.service import list_jobs
from labyard.searches import service, study
from labyard.searches.models import Search, SearchTrial
from labyard.searches.schemas import BestOut, SearchOut, SearchResume, TrialOut
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["searches"])


def search_out(
    db: Session,
    search: Search,
    trials: list[SearchTrial] | None = None,
    jobs: dict[int, Job] | None = None,
) -> SearchOut:
    """The API shape of a search (its trials and jobs read here unless the caller has them)."""
    trials = service.trials_of(db, search.id) if trials is None else trials
    jobs = service.jobs_of(db, search.id) if jobs is None else jobs
    best = service.best_trial(search, trials)
    sweep = db.get(Sweep, search.id)
    return SearchOut(
        id=search.id,
        project_id=search.project_id,
        lab_id=search.lab_id,
        name=sweep.name if sweep else "",
        display_name=sweep.display_name if sweep else "",
        state=search.state,
        reason=search.reason,
        settings={**search.settings, "trials": search.trials_wanted},
        space=search.space,
        trials=search.trials_wanted,
        counts=service.counts(trials, jobs),
        best=None
        if best is None or best.value is None
        else BestOut(number=best.number, job_id=best.job_id, value=best.value, params=best.params),
        created_at=search.created_at,
        finished_at=search.finished_at,
    )


def trial_out(trial: SearchTrial, job: Job | None) -> TrialOut:
    """The API shape of a trial."""
    return TrialOut(
        number=trial.number,
        job_id=trial.job_id,
        job_status=job.status if job is not None else None,
        params=trial.params,
        state=trial.state,
        value=trial.value,
        steps=trial.steps or {},
        pruned_step=trial.pruned_step,
        reason=trial.reason,
        finished_at=trial.finished_at,
    )


@router.get("/searches", response_model=list[SearchOut])
def list_searches(
    user: CurrentUser, db: SessionDep, project_id: int | None = None, lab_id: int | None = None
) -> list[SearchOut]:
    """Searches I can see, newest first."""
    found = service.list_searches(db, user, project_id=project_id, lab_id=lab_id)
    return [search_out(db, s) for s in found[:100]]


@router.get("/searches/{search_id}", response_model=SearchOut)
def get_search(search_id: int, user: CurrentUser, db: SessionDep) -> SearchOut:
    """A search: state, counts, best trial and value (READ)."""
    return search_out(db, service.get_search(db, user, search_id))


@router.get("/searches/{search_id}/trials", response_model=list[TrialOut])
def list_trials(search_id: int, user: CurrentUser, db: SessionDep) -> list[TrialOut]:
    """Every trial with its params, metric per step and outcome, by number (READ)."""
    service.get_search(db, user, search_id)
    jobs = service.jobs_of(db, search_id)
    return [trial_out(t, jobs.get(t.job_id or -1)) for t in service.trials_of(db, search_id)]


@router.get("/searches/{search_id}/importances")
def get_importances(search_id: int, user: CurrentUser, db: SessionDep) -> dict[str, float]:
    """Each searched param's importance to the metric (fANOVA over completed trials; {}
    until two trials completed)."""
    search = service.get_search(db, user, search_id)
    built = study.build(
        f"search-{search.id}",
        service.settings_of(search),
        service.space_of(search),
        service.trials_of(db, search.id),
        seed=search.seed,
    )
    return study.importances(built)


@router.post("/searches/{search_id}/stop", response_model=SearchOut)
def stop_search(search_id: int, user: CurrentUser, db: SessionDep) -> SearchOut:
    """Stop sampling; queued trials stop, running ones get SIGTERM and the grace period."""
    search = service.stop_search(db, user, search_id)
    db.flush()
    return search_out(db, search)


@router.post("/searches/{search_id}/resume", response_model=SearchOut)
def resume_search(
    search_id: int, body: SearchResume, user: CurrentUser, db: SessionDep
) -> SearchOut:
    """Run more trials, keeping every earlier one (a stopped or finished search runs again)."""
    search = service.resume_search(db, user, search_id, more_trials=body.trials)
    db.flush()
    return search_out(db, search)


@router.post("/searches/{search_id}/submit-best", status_code=201)
def submit_best(
    search_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Run the best trial's params again as a one-job sweep; answers the sweep and its job."""
    sweep = service.submit_best(db, user, settings, search_id)
    jobs = list_jobs(db, user, sweep_id=sweep.id)
    return {
        "id": sweep.id,
        "display_name": sweep.display_name,
        "jobs": [{"id": j.id, "display_name": j.display_name, "params": j.params} for j in jobs],
    }
