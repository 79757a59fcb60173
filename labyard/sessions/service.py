"""Lab sessions: start (queued through the jobs scheduler like any job), restart, stop, see,
keep running, cull when idle, and find the session a proxied request goes to.

A session executes code, so only WRITE members of the lab's project (and admins) may start,
see, use or stop it; anyone else gets NotFound, as if there were none. Each start is a new
job (kind: a `LabSession` row points at it) whose command is JupyterLab in the lab's own
folder (labyard/sessions/jupyter.py), with the lab's flavor (or one chosen at start) and the
datasets attached at that moment: attaching one later takes effect at the next start.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.errors import Conflict, DomainError, NotFound
from labyard.jobs import artifacts
from labyard.jobs import service as jobs_service
from labyard.jobs.logs import split_stamp
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from labyard.jobs.views import queue_positions
from labyard.labs import files as lab_files
from labyard.labs import service as labs_service
from labyard.labs.models import Lab
from labyard.projects.models import Role
from labyard.projects.service import role_of, visible_project_ids
from labyard.sessions import jupyter
from labyard.sessions.models import LabSession

S = JobStatus
WARN_BEFORE = timedelta(minutes=10)
PENDING = (S.QUEUED, *LIVE_STATUSES)
_start_lock = threading.Lock()  # two clicks on one server must not start two sessions
log = logging.getLogger(__name__)


@dataclass
class SessionView:
    """What a page or the API shows of a lab's session."""

    lab_id: int
    lab_name: str
    project_id: int
    session: LabSession | None
    state: str  # queued | starting | running | stopped
    project_name: str = ""
    reason: str = ""
    gpus: list[str] = field(default_factory=list)
    idle_seconds: float | None = None
    queue_position: int | None = None
    idle_limit_seconds: float = 3600.0

    @property
    def url(self) -> str:
        """Where the proxied JupyterLab answers (empty unless running)."""
        return jupyter.base_url(self.lab_id) if self.state == "running" else ""

    @property
    def warn(self) -> bool:
        """True in the last minutes before the session is stopped for idleness."""
        limit = self.idle_limit_seconds
        return self.idle_seconds is not None and self.idle_seconds >= limit - min(
            WARN_BEFORE.total_seconds(), limit / 2
        )

    @property
    def stopping(self) -> bool:
        """A stop was asked for and the process has not ended yet."""
        job = self.session.job if self.session else None
        return job is not None and job.status in PENDING and job.stop_requested_at is not None


def _lab(db: Session, user: User, lab_id: int) -> Lab:
    """The lab if the user may use its session (WRITE or admin); NotFound for anyone else."""
    lab = labs_service.get_lab(db, user, lab_id)
    role = role_of(db, user, lab.project_id)
    if role is None or role < Role.WRITE:
        raise NotFound("No such lab session.")
    return lab


def may_use(db: Session, user: User, lab: Lab) -> bool:
    """Whether the user may start, open and stop the lab's session."""
    role = role_of(db, user, lab.project_id)
    return role is not None and role >= Role.WRITE


def current(db: Session, lab_id: int) -> LabSession | None:
    """The lab's newest session (live or not), or None if it never had one."""
    query = select(LabSession).where(LabSession.lab_id == lab_id)
    return db.scalars(query.order_by(LabSession.id.desc()).limit(1)).first()


def _image(settings: Settings, lab: Lab) -> str:
    """The lab's image (mlsteam.yml), else the default; an unreadable file does not stop a
    session (it is how one fixes the file)."""
    try:
        config = lab_files.read_config(settings, lab)
    except (DomainError, OSError):
        return settings.docker_image
    return config.image or settings.docker_image


# ------------------------------------------------------------------ start / stop


def start_session(
    db: Session, settings: Settings, user: User, lab_id: int, *, flavor: str | None = None
) -> LabSession:
    """Start the lab's session (WRITE): queue a JupyterLab job on `flavor` (default the
    lab's) with the lab's datasets. A session already queued or running is answered as is."""
    lab = _lab(db, user, lab_id)
    image = _image(settings, lab)  # read before this transaction writes anything
    with _start_lock:
        existing = current(db, lab.id)
        old = existing.job if existing is not None else None
        # a session being stopped is being restarted: the new one queues behind it
        if existing is not None and old is not None and _pending(old):
            return existing
        flavor_row = jobs_service.resolve_flavor(db, settings, flavor or lab.flavor)
        mounts = jobs_service.check_datasets(
            [
                jobs_service.DatasetInput(m.dataset.name, m.host_path, m.dataset.id)
                for m in labs_service.mounts(settings, lab)
            ]
        )
        job = Job(
            project_id=lab.project_id,
            lab_id=lab.id,
            created_by_id=user.id,
            name=f"{lab.name} · JupyterLab session"[:200],
            label="JupyterLab session",
            status=S.QUEUED,
            params={},
            command=list(jupyter.COMMAND),
            image=image,
            flavor=flavor_row.name,
            gpus=flavor_row.gpus,
            cpus=flavor_row.cpus,
            memory_mb=flavor_row.memory_mb,
            datasets=mounts,
            assigned_gpus=[],
        )
        db.add(job)
        db.flush()
        row = LabSession(
            project_id=lab.project_id, lab_id=lab.id, job_id=job.id, started_by_id=user.id
        )
        db.add(row)
        db.flush()
        folder = jobs_service.job_dir(settings, job.id)
        try:
            lab_root = lab_files.lab_root(settings, lab)
            # on a cluster's node JupyterLab listens on a port the server can reach
            tcp = settings.executor == "slurm"
            jupyter.write_files(settings, folder, job.id, lab_root, lab.id, tcp=tcp)
        except OSError as exc:
            raise Conflict(f"Could not prepare the session: {exc.strerror or exc}.") from exc
        db.commit()  # inside the lock: a second click sees this session
        return row


def _pending(job: Job) -> bool:
    """Queued or live, and not asked to stop."""
    return job.status in PENDING and job.stop_requested_at is None


def _stop_job(job: Job, reason: str) -> None:
    if job.status == S.QUEUED:
        jobs_service.transition(job, S.STOPPED, reason=reason)
    elif job.status in LIVE_STATUSES:
        jobs_service.request_stop(job, reason=reason)


def stop_session(db: Session, user: User, lab_id: int) -> LabSession | None:
    """Stop the lab's session (WRITE, admins): a queued one at once, a running one through
    the scheduler (SIGTERM, then SIGKILL after the grace period). Harmless when stopped."""
    lab = _lab(db, user, lab_id)
    row = current(db, lab.id)
    if row is not None:
        _stop_job(row.job, f"stopped by {user.username}")
    return row


def restart_session(
    db: Session, settings: Settings, user: User, lab_id: int, *, flavor: str | None = None
) -> LabSession:
    """Stop the lab's session and queue a new one (it starts once the old one freed its
    GPUs): a fresh JupyterLab with the lab's datasets as attached now."""
    stop_session(db, user, lab_id)
    return start_session(db, settings, user, lab_id, flavor=flavor)


def _running(
    db: Session, user: User, lab_id: int, otherwise: DomainError
) -> tuple[Lab, LabSession]:
    """The lab (WRITE) and its running session; `otherwise` is raised when none runs."""
    lab = _lab(db, user, lab_id)
    row = current(db, lab.id)
    if row is None or row.job.status != S.RUNNING:
        raise otherwise
    return lab, row


def keep_running(db: Session, settings: Settings, user: User, lab_id: int) -> SessionView:
    """Count as activity now (the warning's "keep running"); Conflict unless running."""
    lab, row = _running(db, user, lab_id, Conflict("The lab's session is not running."))
    folder = jobs_service.job_dir(settings, row.job_id)
    if not jupyter.touch(settings, folder, row.job_id, lab.id):
        raise Conflict("JupyterLab is not answering yet; try again in a moment.")
    return view(db, settings, lab, row)


# ------------------------------------------------------------------ read


def view(db: Session, settings: Settings, lab: Lab, row: LabSession | None) -> SessionView:
    """The session's state: queued (with its position), starting until JupyterLab answers,
    running (GPUs, idle time), or stopped with the reason."""
    out = SessionView(lab.id, lab.name, lab.project_id, row, "stopped", lab.project.name)
    out.idle_limit_seconds = settings.session_idle_minutes * 60
    if row is None:
        return out
    job = row.job
    out.gpus = list(job.assigned_gpus or [])
    if job.status == S.QUEUED:
        out.state = "queued"
        out.queue_position = queue_positions(db, [job], settings.fair_share_days).get(job.id)
    elif job.status in LIVE_STATUSES:
        folder = jobs_service.job_dir(settings, job.id)
        seen = jupyter.activity(settings, folder, job.id, lab.id)
        out.state = "running" if seen is not None and job.status == S.RUNNING else "starting"
        if seen is not None:
            idle = 0.0 if seen.busy else (utcnow() - seen.last_activity).total_seconds()
            out.idle_seconds = max(0.0, idle)
    else:
        out.reason = job.reason or f"the session {job.status}"
        if job.status == S.FAILED:
            out.reason = _with_last_line(settings, job)
        out.gpus = []
    return out


def _with_last_line(settings: Settings, job: Job) -> str:
    """A failed session's reason with the last line it printed (why JupyterLab exited)."""
    lines, _ = artifacts.log_tail(settings, job.id, lines=1)
    last = split_stamp(lines[-1].encode())[1].strip()[:300] if lines else ""
    return f"{job.reason}: {last}" if last else job.reason


def get_session(db: Session, settings: Settings, user: User, lab_id: int) -> SessionView:
    """The lab's session as its page and the API show it (WRITE)."""
    lab = _lab(db, user, lab_id)
    return view(db, settings, lab, current(db, lab.id))


def list_sessions(db: Session, settings: Settings, user: User) -> list[SessionView]:
    """The queued and running sessions the user may use (admins: every one), newest first."""
    query = (
        select(LabSession, Lab)
        .join(Job, Job.id == LabSession.job_id)
        .join(Lab, Lab.id == LabSession.lab_id)
        .where(Job.status.in_(PENDING))
        .order_by(LabSession.id.desc())
    )
    if not user.is_admin:
        query = query.where(LabSession.project_id.in_(visible_project_ids(db, user)))
    return [
        view(db, settings, lab, row)
        for row, lab in db.execute(query).all()
        if may_use(db, user, lab)
    ]


def lab_session_live(db: Session, lab_id: int) -> str | None:
    """Why the lab cannot be deleted now (its session is queued or running), or None
    (wired into labs.delete_lab)."""
    row = current(db, lab_id)
    if row is not None and row.job.status in PENDING:
        return "its JupyterLab session is queued or running; stop it first"
    return None


def dataset_change_note(db: Session, lab_id: int) -> str | None:
    """What attaching or detaching a dataset means while the lab's session is queued or
    running (it keeps the mounts it started with), or None (wired into labs)."""
    row = current(db, lab_id)
    if row is not None and _pending(row.job):
        return (
            "The lab's JupyterLab session keeps the datasets it started with: "
            "this change takes effect at its next start (Restart)."
        )
    return None


def session_job_retry(db: Session, job_id: int) -> str | None:
    """Why a session's job is not retried (wired into jobs.retry_job), or None."""
    found = db.scalar(select(LabSession.id).where(LabSession.job_id == job_id))
    if found is not None:
        return "A lab session is not retried: start it again from its lab's page."
    return None


# ------------------------------------------------------------------ proxy


@dataclass(frozen=True)
class Target:
    """Where a proxied request goes: the session job's JupyterLab."""

    lab_id: int
    job_id: int
    endpoint: jupyter.Endpoint


def target_for_proxy(db: Session, settings: Settings, user: User, lab_id: int) -> Target:
    """The running session a proxied request goes to (WRITE); reads only."""
    missing = NotFound("The lab's session is not running; start it from the lab's page.")
    lab, row = _running(db, user, lab_id, missing)
    folder = jobs_service.job_dir(settings, row.job_id)
    found = jupyter.endpoint(folder)  # None while starting: the socket then refuses (502)
    socket = jupyter.Endpoint(socket=jupyter.connect_path(jupyter.socket_path(folder)))
    return Target(lab.id, row.job_id, found or socket)


# ------------------------------------------------------------------ idle culling


def cull_idle(settings: Settings, database: Database) -> list[int]:
    """Ask the scheduler to stop every running session idle longer than the setting
    (JupyterLab's last activity, no busy kernel); the ids of their labs. JupyterLab is asked
    outside any transaction; each stop is a short write of its own."""
    with database.read_session() as db:
        rows = db.execute(
            select(LabSession.lab_id, LabSession.job_id)
            .join(Job, Job.id == LabSession.job_id)
            .where(Job.status == S.RUNNING, Job.stop_requested_at.is_(None))
        ).all()
    limit = timedelta(minutes=settings.session_idle_minutes)
    culled: list[int] = []
    for lab_id, job_id in rows:
        folder = jobs_service.job_dir(settings, job_id)
        seen = jupyter.activity(settings, folder, job_id, lab_id)
        if seen is None or seen.busy or utcnow() - seen.last_activity < limit:
            continue
        with database.session() as db:
            job = db.get(Job, job_id)
            if job is None or job.status != S.RUNNING or job.stop_requested_at is not None:
                continue
            minutes = f"{settings.session_idle_minutes:g}"
            jobs_service.request_stop(job, reason=f"stopped after {minutes} minutes idle")
        log.info("stopping the idle session of lab %s (job %s)", lab_id, job_id)
        culled.append(lab_id)
    return culled
