"""The scheduler: a lease-holding loop that adopts, follows and dispatches jobs.

One `tick()`: (1) take or renew the lease in `scheduler_lease` (only its holder goes on;
a holder on this host whose process is gone is replaced at once, others after expiry);
(2) the first time, adopt every job the database says is starting or running (JupyterHub's
init_spawners pattern) and remove the executor's orphans; (3) follow live jobs: ingest new
log lines (metrics, progress), send SIGTERM then SIGKILL after the grace period to jobs
asked to stop, and finish jobs that exited; (4) dispatch queued jobs in the queue's order
(priority, then fair share, then FIFO: labyard.jobs.fairshare) onto free whole GPUs, CPUs
and memory, past jobs held by a quota (labyard.jobs.dispatch: a job that does not fit yet
holds back the ones behind it, so large jobs do not starve); with the `preemption` setting
the job that holds back then may preempt jobs of lower priority (labyard.jobs.preemption:
they are stopped as in (3) and go back to the queue to resume). With an executor that places
jobs itself (Slurm), (4) hands queued jobs over instead (labyard.jobs.placement) and (3)
follows them while they wait in the engine too. `run` first checks that the executor can
run jobs (Slurm's probe of the shared folder) and dispatches nothing until it can.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import psutil
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.jobs import dispatch, ingest, placement, preemption, quota
from labyard.jobs.executors import make_executor
from labyard.jobs.executors.base import (
    LOST_REASON,
    Executor,
    ExecutorError,
    JobState,
    LaunchSpec,
)
from labyard.jobs.inventory import Inventory, node_inventory
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus, SchedulerLease
from labyard.jobs.service import job_dir, request_stop, transition

log = logging.getLogger(__name__)
S = JobStatus
CHECK_RETRY_SECONDS = 60.0  # how often a failed start-up check of the executor is retried
# A step of a higher domain run every tick by the lease holder (e.g. advancing searches).
SchedulerStep = Callable[[Settings, Database], None]


def _holder_alive(holder: str) -> bool:
    """False only when `holder` is a process of this host that no longer exists."""
    host, _, rest = holder.partition("|")
    pid_text, _, started = rest.partition("|")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    try:
        return f"{psutil.Process(int(pid_text)).create_time():.3f}" == started.split("|")[0]
    except psutil.Error:
        return False


def _log_adoption(job: Job, executor: str, external_id: str, state: JobState) -> None:
    """One line per job found live in the database at start: adopted, ended or lost."""
    where = f"job {job.id} ({executor} executor, {external_id or 'no external id'})"
    if state.running:
        log.info("adopted %s: %s", where, state.describe())
    elif state.lost:
        log.warning("marking %s failed: %s", where, state.describe())
    else:
        log.info("finishing %s, ended while the server was down: %s", where, state.describe())


def _never_submitted(job: Job, executor: Executor, external_id: str) -> bool:
    """Was this starting job claimed for an engine that places jobs, but never submitted
    to it (no id recorded, none of its name in the engine) and nobody asked it to stop?"""
    return (
        executor.places_jobs
        and job.status == S.STARTING
        and not external_id
        and job.stop_requested_at is None
    )


class Scheduler:
    """Dispatches and follows jobs; call `tick()` or run it in a thread with `run()`."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        inventory: Inventory | None = None,
        executor: Executor | None = None,
        steps: Sequence[SchedulerStep] = (),
    ) -> None:
        self.settings = settings
        self.steps = tuple(steps)
        self.database = database
        self.inventory = inventory or node_inventory(settings)
        self.executor = executor or make_executor(settings)
        self._executors: dict[str, Executor] = {self.executor.name: self.executor}
        me = psutil.Process()
        self.holder = (
            f"{socket.gethostname()}|{me.pid}|{me.create_time():.3f}|{uuid.uuid4().hex[:8]}"
        )
        self.lease_seconds = max(10.0, 5 * settings.scheduler_interval_seconds)
        self._adopted = False
        self._term_sent: dict[int, float] = {}  # job id -> when SIGTERM went
        self.quota = quota.QuotaWatch(settings)

    # ------------------------------------------------------------------ lease

    def acquire_lease(self) -> bool:
        """Take or renew the lease; True when this scheduler may dispatch."""
        now = utcnow()
        until = now + timedelta(seconds=self.lease_seconds)
        try:
            with self.database.session() as db:
                row = db.get(SchedulerLease, 1, with_for_update=True)
                if row is None:
                    db.add(SchedulerLease(id=1, holder=self.holder, expires_at=until))
                    return True
                if row.holder != self.holder and row.expires_at > now and _holder_alive(row.holder):
                    return False
                row.holder, row.expires_at = self.holder, until
                return True
        except IntegrityError:  # another scheduler inserted the row first
            return False

    def release_lease(self) -> None:
        """Give the lease up (on a clean shutdown)."""
        with self.database.session() as db:
            db.execute(
                update(SchedulerLease)
                .where(SchedulerLease.id == 1, SchedulerLease.holder == self.holder)
                .values(expires_at=utcnow())
            )

    # ------------------------------------------------------------------ loop

    def tick(self) -> bool:
        """One round; False when another scheduler holds the lease."""
        if not self.acquire_lease():
            return False
        if not self._adopted:
            try:
                self.adopt_all()
            except ExecutorError as exc:  # the engine does not answer: adopt next tick
                log.warning("cannot adopt jobs yet: %s", exc)
                return True
            self._adopted = True
        answered = self.follow_live()
        for step in self.steps:
            try:
                step(self.settings, self.database)
            except Exception:  # noqa: BLE001 - a failing step must not stop dispatching
                log.exception("scheduler step %s failed", getattr(step, "__name__", step))
        if answered:
            self.dispatch()
        return True

    def check_executor(self, stop: threading.Event) -> None:
        """Run the executor's start-up check until it passes (or `stop` is set), saying
        what is wrong in the server's log each time it fails."""
        while not stop.is_set():
            try:
                self.executor.check()
                return
            except (ExecutorError, OSError) as exc:
                log.error(
                    "the %s executor cannot run jobs: %s; no job is dispatched until this is "
                    "fixed (checking again in %.0f s)",
                    self.executor.name,
                    exc,
                    CHECK_RETRY_SECONDS,
                )
            stop.wait(CHECK_RETRY_SECONDS)

    def run(self, stop: threading.Event) -> None:
        """Check the executor, then tick every `scheduler_interval_seconds` until `stop`."""
        self.check_executor(stop)
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - keep scheduling; the next tick retries
                log.exception("scheduler tick failed")
            stop.wait(self.settings.scheduler_interval_seconds)
        try:
            self.release_lease()
        except Exception:  # noqa: BLE001
            log.exception("could not release the scheduler lease")

    def _executor_for(self, job: Job) -> Executor:
        name = job.executor or self.executor.name
        if name not in self._executors:
            self._executors[name] = make_executor(self.settings, name)
        return self._executors[name]

    # ------------------------------------------------------------------ adopt

    def adopt_all(self) -> None:
        """Re-attach to every live job after a (re)start; finish those that are gone.

        The executor's state of every job is read first: if the engine does not answer,
        this raises and the next tick tries again (nothing is marked lost meanwhile)."""
        self.executor.refresh()
        with self.database.session() as db:
            ids = list(db.scalars(select(Job.id).where(Job.status.in_(LIVE_STATUSES))))
        for job_id in ids:
            with self.database.session() as db:
                job = db.get(Job, job_id)
                if job is None or job.status not in LIVE_STATUSES:
                    continue
                executor = self._executor_for(job)
                external = job.external_id or executor.external_id_of(job.id, job.attempt)
                if _never_submitted(job, executor, external):
                    log.info("job %s was never handed to %s: queued again", job.id, executor.name)
                    placement.unclaim(job)
                    continue
                state = executor.adopt(
                    job.id, job.attempt, external, job_dir(self.settings, job.id)
                )
                _log_adoption(job, executor.name, external, state)
                if state.running:
                    job.external_id = external
                    placement.apply_live(job, state)
                    continue
                self._finish(db, job, executor, state)
        with self.database.session() as db:
            live = set(db.scalars(select(Job.id).where(Job.status.in_(LIVE_STATUSES))))
        try:
            removed = self.executor.remove_orphans(live)
        except ExecutorError:
            removed = []
        if removed:
            log.info("removed orphaned job containers: %s", ", ".join(removed))

    # ------------------------------------------------------------------ follow

    def follow_live(self) -> bool:
        """Ingest logs of live jobs, deliver stop signals, finish exited jobs, and keep the
        engine's reports (waiting, where) on the rows of jobs an engine places.

        Executor calls (Docker API round trips, Slurm commands, waiting for a log follower)
        happen outside database transactions, so on SQLite no writer waits on them. False
        when the executor's engine does not answer (nothing is followed this round)."""
        try:
            self.executor.refresh()
        except ExecutorError as exc:
            log.warning("the %s executor does not answer: %s", self.executor.name, exc)
            return False
        with self.database.read_session() as db:
            ids = list(
                db.scalars(
                    select(Job.id).where(
                        Job.status.in_(LIVE_STATUSES),
                        (Job.status == S.RUNNING) | (Job.external_id != ""),
                    )
                )
            )
        for job_id in ids:
            try:
                self._follow_one(job_id)
            except Exception:  # noqa: BLE001 - one broken job must not stop the others
                log.exception("following job %s failed", job_id)
        return True

    def _follow_one(self, job_id: int) -> None:
        folder = job_dir(self.settings, job_id)
        with self.database.read_session() as db:
            job = db.get(Job, job_id)
            if job is None or job.status not in LIVE_STATUSES:
                return
            running = job.status == S.RUNNING
            external_id, stop_requested_at = job.external_id, job.stop_requested_at
            executor = self._executor_for(job)
        if running:  # a job waiting in an engine has no log or output yet
            over_quota = self.quota.over(job_id, folder / "output")
            with self.database.session() as db:
                job = db.get(Job, job_id)
                if job is None or job.status != S.RUNNING:
                    return
                ingest.ingest_log(db, job, folder)
                if over_quota:
                    request_stop(job, reason=over_quota)
                stop_requested_at = job.stop_requested_at
        if stop_requested_at is not None:
            self._deliver_stop(executor, job_id, external_id)
        state = executor.poll(job_id, external_id)
        if state.running:
            self._update_live(job_id, state)
            return
        executor.logs_complete(job_id)
        with self.database.session() as db:
            job = db.get(Job, job_id)
            if job is None or job.status not in LIVE_STATUSES:
                return
            self._record_finish(db, job, state)
        executor.cleanup(job_id, external_id)

    def _deliver_stop(self, executor: Executor, job_id: int, external_id: str) -> None:
        """SIGTERM first, always; SIGKILL once the grace period has passed since that signal
        (a late tick must not turn a graceful stop into a kill). An engine cancels a job
        that still waits in it at once."""
        sent = self._term_sent.get(job_id)
        if sent is None:
            executor.stop(job_id, external_id, force=False)
            self._term_sent[job_id] = time.monotonic()
        elif time.monotonic() - sent >= self.settings.stop_grace_seconds:
            executor.stop(job_id, external_id, force=True)

    def _update_live(self, job_id: int, state: JobState) -> None:
        """A live job's report on its row (labyard.jobs.placement.apply_live), written only
        when it changes something: the running display counts from the process's start."""
        with self.database.read_session() as db:
            job = db.get(Job, job_id)
            if job is None or not placement.changes(job, state):
                return
        with self.database.session() as db:
            job = db.get(Job, job_id)
            if job is not None and job.status in LIVE_STATUSES:
                placement.apply_live(job, state)

    def _finish(self, db: Session, job: Job, executor: Executor, state: JobState) -> None:
        """Finish a job inside the caller's transaction (used at adoption, once at start)."""
        executor.logs_complete(job.id)
        self._record_finish(db, job, state)
        db.flush()
        executor.cleanup(job.id, job.external_id)

    def _record_finish(self, db: Session, job: Job, state: JobState) -> None:
        """The last log lines, then the final state: the one place a job's exit is judged."""
        ingest.ingest_log(db, job, job_dir(self.settings, job.id), final=True)
        code = state.exit_code
        placement.apply_final(job, state.placement)
        done = code == 0 and not state.reason
        preempted = preemption.is_preempted(job) and not state.lost
        requeue = preempted and not done  # a preempted job that finished anyway succeeded
        if state.lost:
            transition(job, S.FAILED, reason=LOST_REASON)
        elif requeue:
            pass  # preempted: back to the queue once its attempt is recorded (below)
        elif job.stop_requested_at is not None and not preempted:
            to = S.PRUNED if job.stop_status == S.PRUNED else S.STOPPED
            transition(job, to, reason=job.reason or "stopped by user", exit_code=code)
        elif done:
            transition(job, S.SUCCEEDED, reason="", exit_code=0)
        else:
            why = state.reason or f"exited with code {code}"
            transition(job, S.FAILED, reason=why, exit_code=code)
        placement.keep_process_times(job, state)
        preemption.end_attempt(db, job, state, requeue=requeue)
        self._term_sent.pop(job.id, None)
        self.quota.forget(job.id)

    # ------------------------------------------------------------------ dispatch

    def dispatch(self) -> int:
        """Start queued jobs that fit now, in the queue's order (or hand them to an engine
        that places them); return how many started."""
        started, now = 0, utcnow()  # one time for the round: its order stays put
        while True:
            more, spec = self._claim_next(now)
            if spec is not None:
                self._launch(spec)
                started += 1
            if not more:
                break
        if self.settings.preemption and not self.executor.places_jobs:
            with self.database.session() as db:  # victims get SIGTERM in the next follow
                preemption.preempt(db, self.settings, self.inventory, now)
        return started

    def _claim_next(self, now: datetime) -> tuple[bool, LaunchSpec | None]:
        """Mark the head of the queue `starting` with its GPUs if it fits now.

        Returns (look again?, the launch spec of the claimed job)."""
        if self.executor.places_jobs:
            with self.database.session() as db:
                return placement.claim_for_engine(db, self.settings, self.executor.name, now)
        with self.database.session() as db:
            return dispatch.claim_local(db, self.settings, self.inventory, self.executor.name, now)

    def _launch(self, spec: LaunchSpec) -> None:
        try:
            external = self.executor.submit(spec)
        except (ExecutorError, OSError) as exc:
            with self.database.session() as db:
                job = db.get(Job, spec.job_id)
                if job is not None and job.status == S.STARTING:
                    transition(job, S.FAILED, reason=f"could not start: {exc}")
            return
        with self.database.session() as db:
            job = db.get(Job, spec.job_id)
            if job is not None and job.status == S.STARTING:
                job.external_id = external
                if self.executor.places_jobs:  # it waits in the engine until it starts
                    job.engine_state = "SUBMITTED"
                else:
                    transition(job, S.RUNNING)
