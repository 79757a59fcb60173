"""The search driver: one step of every active search, run by the scheduler each tick
(after it ingested the jobs' logs, before it dispatches), under the scheduler's lease.

Each step is short transactions around decisions made outside them:
1. report: the metric points each running trial's job printed since the last step become
   the trial's intermediate values (by resource step); the pruner judges the trial, and a
   trial it stops is marked pruned and its job asked to stop (SIGTERM, the grace period,
   then status `pruned`) in the same transaction as the values it was judged on;
2. settle: trials whose jobs ended get their outcome (complete with the metric's last
   value, pruned, or failed with the job's reason);
3. fill: new trials are sampled until `parallel` run or `trials` exist; each trial row
   and its job are inserted together, so a crash never loses or repeats one;
4. conclude: a search with all its trials ended is finished (or stopped, when stopping).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.hooks import HookPoint
from labyard.jobs import incoming
from labyard.jobs import service as jobs_service
from labyard.jobs.models import (
    FINAL_STATUSES,
    LIVE_STATUSES,
    Job,
    JobStatus,
    MetricPoint,
    MetricSeries,
    Sweep,
)
from labyard.jobs.naming import grid_varying
from labyard.mlsteam import LabConfig, build_command, parse_mlsteam, resolved_yaml
from labyard.searches import study
from labyard.searches.models import Search, SearchState, SearchTrial, TrialState
from labyard.searches.service import search_dir, settings_of, space_of

log = logging.getLogger(__name__)
# Told when a search concludes (finished or stopped), in the concluding transaction.
SEARCH_FINISHED: HookPoint[Callable[[Session, Search], None]] = HookPoint("searches.finished")
ACTIVE = (SearchState.RUNNING, SearchState.STOPPING)
POINTS_PER_STEP = 20_000  # metric points read per trial per tick (the rest next tick)
DONE_FRACTION = 0.999  # a job whose progress lines say it did this much is never pruned


def advance_searches(settings: Settings, database: Database) -> None:
    """One step of every running or stopping search (a scheduler step)."""
    with database.read_session() as db:
        ids = list(db.scalars(select(Search.id).where(Search.state.in_(ACTIVE))))
    for search_id in ids:
        try:
            advance(settings, database, search_id)
        except Exception:  # noqa: BLE001 - one broken search must not stop the others
            log.exception("advancing search %s failed", search_id)


def advance(settings: Settings, database: Database, search_id: int) -> None:
    """Report, settle, fill and conclude one search."""
    _report(database, search_id)
    _settle(database, search_id)
    _fill(settings, database, search_id)
    _conclude(database, search_id)


# --------------------------------------------------------------------------- report


def _new_points(db: Session, search: Search, trial: SearchTrial) -> tuple[dict[str, float], int]:
    """The trial's steps with the points its job printed since `last_point_id` folded in."""
    metric, resource = search.settings["metric"], search.settings["resource"]
    rows = db.execute(
        select(MetricPoint.id, MetricPoint.x, MetricPoint.value)
        .where(
            MetricPoint.job_id == trial.job_id,
            MetricPoint.name == metric,
            MetricPoint.x_name == resource,
            MetricPoint.id > trial.last_point_id,
        )
        .order_by(MetricPoint.id)
        .limit(POINTS_PER_STEP)
    ).all()
    steps = dict(trial.steps or {})
    last = trial.last_point_id
    for point_id, x, value in rows:
        last = point_id
        if math.isfinite(x) and math.isfinite(value):
            steps[str(int(round(x)))] = float(value)
    return steps, last


def _report(database: Database, search_id: int) -> None:
    with database.read_session() as db:
        search = db.get(Search, search_id)
        if search is None:
            return
        trials = list(db.scalars(select(SearchTrial).where(SearchTrial.search_id == search_id)))
        # jobs the pruner may still stop: live, not asked to stop, and not at the end of
        # their work (a trial past its last epoch costs nothing more; stopping it would
        # only throw its result away)
        live_jobs = set(
            db.scalars(
                select(Job.id).where(
                    Job.sweep_id == search_id,
                    Job.status.in_(LIVE_STATUSES),
                    Job.stop_requested_at.is_(None),
                    or_(Job.progress_fraction.is_(None), Job.progress_fraction < DONE_FRACTION),
                )
            )
        )
        updates: dict[int, tuple[dict[str, float], int]] = {}
        for t in trials:
            if t.finished_at is None and t.job_id is not None:
                steps, last = _new_points(db, search, t)
                if last != t.last_point_id:
                    updates[t.id] = (steps, last)
        if not updates:
            return
        verdicts = _judge(search, trials, updates, live_jobs)
    with database.session() as db:
        for trial_id, (steps, last) in updates.items():
            trial = db.get(SearchTrial, trial_id, with_for_update=True)
            if trial is None or trial.finished_at is not None:
                continue
            trial.steps, trial.last_point_id = steps, last
            stop_step, attrs = verdicts.get(trial_id, (None, trial.system_attrs))
            trial.system_attrs = attrs
            if stop_step is not None and trial.state == TrialState.RUNNING:
                _prune(db, search_id, trial, steps, stop_step)


def _judge(
    search: Search,
    trials: list[SearchTrial],
    updates: dict[int, tuple[dict[str, float], int]],
    live_jobs: set[int],
) -> dict[int, tuple[int | None, dict[str, Any]]]:
    """The pruner's verdict on each updated trial whose job still runs: the step it is
    stopped at (None: it runs on) and its system attrs after."""
    settings = settings_of(search)
    if settings.early_stopping == "none":
        return {}
    records = [study.record(t, updates[t.id][0] if t.id in updates else None) for t in trials]
    built = study.build(
        f"search-{search.id}", settings, space_of(search), records, seed=search.seed
    )
    verdicts: dict[int, tuple[int | None, dict[str, Any]]] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if t.id in updates and t.state == TrialState.RUNNING and t.job_id in live_jobs:
            judged = max((int(k) for k in t.steps or {}), default=None)
            verdicts[t.id] = study.judge(built, t.number, after=judged)
    return verdicts


def _prune(
    db: Session, search_id: int, trial: SearchTrial, steps: dict[str, float], step: int
) -> None:
    search = db.get(Search, search_id)
    assert search is not None
    metric, resource = search.settings["metric"], search.settings["resource"]
    rule = search.settings["early_stopping"]
    why = f"pruned by {rule} at {resource} {step} ({metric}={steps[str(step)]:.6g})"
    trial.state, trial.pruned_step, trial.reason = TrialState.PRUNED, step, why
    job = db.get(Job, trial.job_id, with_for_update=True) if trial.job_id else None
    if job is not None and job.status in LIVE_STATUSES:
        jobs_service.request_stop(job, reason=why, status=JobStatus.PRUNED)


# --------------------------------------------------------------------------- settle


def _outcome(db: Session, search: Search, trial: SearchTrial, job: Job | None) -> None:
    """Record how the trial ended from its job's final status."""
    trial.finished_at = utcnow()
    if job is None:
        trial.state, trial.reason = TrialState.FAILED, "its job was deleted"
        return
    if job.status == JobStatus.PRUNED or trial.state == TrialState.PRUNED:
        trial.state = TrialState.PRUNED
        trial.reason = trial.reason or job.reason
        return
    if job.status != JobStatus.SUCCEEDED:
        trial.state, trial.reason = TrialState.FAILED, f"job {job.status}: {job.reason}"[:500]
        return
    value = _final_value(db, search, trial)
    if value is None:
        metric = search.settings["metric"]
        trial.state, trial.reason = TrialState.FAILED, f"the job never printed {metric}"
        return
    trial.state, trial.value = TrialState.COMPLETE, value


def _final_value(db: Session, search: Search, trial: SearchTrial) -> float | None:
    """The metric's last value: at the last resource step, else its series' last value."""
    steps = trial.steps or {}
    if steps:
        return float(steps[max(steps, key=int)])
    series = db.scalars(
        select(MetricSeries)
        .where(MetricSeries.job_id == trial.job_id, MetricSeries.name == search.settings["metric"])
        .order_by(MetricSeries.last_point_id.desc())
        .limit(1)
    ).first()
    return float(series.last_value) if series is not None else None


def _settle(database: Database, search_id: int) -> None:
    with database.session() as db:
        search = db.get(Search, search_id)
        if search is None:
            return
        open_trials = db.scalars(
            select(SearchTrial)
            .where(SearchTrial.search_id == search_id, SearchTrial.finished_at.is_(None))
            .with_for_update()
        )
        for trial in open_trials:
            job = db.get(Job, trial.job_id) if trial.job_id is not None else None
            if job is None or job.status in FINAL_STATUSES:
                _outcome(db, search, trial, job)


# --------------------------------------------------------------------------- fill


def _fill(settings: Settings, database: Database, search_id: int) -> None:
    config: LabConfig | None = None
    while True:
        with database.read_session() as db:
            search = db.get(Search, search_id)
            if search is None or search.state != SearchState.RUNNING:
                return
            trials = list(db.scalars(select(SearchTrial).where(SearchTrial.search_id == search_id)))
            live = sum(1 for t in trials if t.finished_at is None)
            if live >= search.settings["parallel"] or len(trials) >= search.trials_wanted:
                return
            space = space_of(search)
            built = study.build(
                f"search-{search.id}", settings_of(search), space, trials, seed=search.seed
            )
        snapshot = search_dir(settings, search_id) / "lab"
        if config is None:
            config = parse_mlsteam((snapshot / "mlsteam.yml").read_text(encoding="utf-8"))
        try:
            sampled = study.sample(built, space)
        except (ValueError, RuntimeError) as exc:
            _give_up(database, search_id, f"the sampler failed: {exc}")
            return
        prepared = incoming.prepare_folder(
            settings, snapshot, resolved_yaml(config, sampled.params)
        )
        try:
            added = _add_trial(
                settings, database, search_id, len(trials), sampled, config, prepared
            )
        except Exception:
            incoming.discard(prepared)
            raise
        if not added:
            incoming.discard(prepared)
            return


def _add_trial(
    settings: Settings,
    database: Database,
    search_id: int,
    expected: int,
    sampled: study.Sampled,
    config: LabConfig,
    prepared: Path,
) -> bool:
    """Insert the trial and its job, unless another step added a trial meanwhile."""
    with database.session() as db:
        search = db.get(Search, search_id, with_for_update=True)
        sweep = db.get(Sweep, search_id, with_for_update=True)
        if search is None or sweep is None or search.state != SearchState.RUNNING:
            return False
        have = db.scalars(select(SearchTrial.number).where(SearchTrial.search_id == search_id))
        if len(list(have)) != expected:
            return False
        spec = incoming.JobSpec(**search.job_spec)
        job = incoming.add_job(
            db,
            settings,
            sweep=sweep,
            spec=spec,
            params=sampled.params,
            command=build_command(config, sampled.params),
            prepared=prepared,
            created_by_id=search.created_by_id,
            varying=grid_varying(sweep.grid),
        )
        db.add(
            SearchTrial(
                search_id=search_id,
                number=sampled.number,
                job_id=job.id,
                params=sampled.params,
                state=TrialState.RUNNING,
                steps={},
                system_attrs=sampled.system_attrs,
            )
        )
    return True


def _give_up(database: Database, search_id: int, reason: str) -> None:
    with database.session() as db:
        search = db.get(Search, search_id, with_for_update=True)
        if search is not None and search.state == SearchState.RUNNING:
            search.state, search.reason = SearchState.STOPPING, reason[:500]


# --------------------------------------------------------------------------- conclude


def _conclude(database: Database, search_id: int) -> None:
    with database.session() as db:
        search = db.get(Search, search_id, with_for_update=True)
        if search is None or search.state not in ACTIVE:
            return
        trials = list(db.scalars(select(SearchTrial).where(SearchTrial.search_id == search_id)))
        if any(t.finished_at is None for t in trials):
            return
        if search.state == SearchState.STOPPING:
            search.state = SearchState.STOPPED
        elif len(trials) >= search.trials_wanted:
            search.state = SearchState.FINISHED
        else:
            return
        search.finished_at = utcnow()
        for announce in SEARCH_FINISHED.handlers() if SEARCH_FINISHED.wired else ():
            announce(db, search)  # inside this transaction: queue work, send nothing
