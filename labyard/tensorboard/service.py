"""TensorBoard instances: open (or reuse) one for jobs, a sweep or a chosen log dir; list,
check, stop, and reap idle or dead ones.

An instance belongs to one project and follows its permissions: whoever may READ the
project may open and view it; its starter or a WRITE member may stop it. One process serves
one distinct set of log dirs (the row's `key`); asking for the same set again reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from labyard import paths
from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.db.engine import is_read_session, write_beside
from labyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labyard.jobs import naming
from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job
from labyard.labs import service as labs_service
from labyard.projects.models import Role
from labyard.projects.service import (
    require_owned,
    role_of,
    visible_project_ids,
)
from labyard.tensorboard import process
from labyard.tensorboard.models import LIVE_STATUSES, TensorBoardInstance, TensorBoardStatus

MAX_RUNS = 100
TOUCH_EVERY = timedelta(minutes=1)
RUN_NAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")
_open_lock = threading.Lock()  # two clicks on one server must not start two processes
# last-access notes: one writer thread, at most one pending note per instance
_touch_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labyard-tb-touch")
_touch_lock = threading.Lock()
_touch_pending: set[int] = set()
log = logging.getLogger(__name__)

Status = TensorBoardStatus


@dataclass(frozen=True)
class Readiness:
    """What the waiting page shows: whether the instance answers, or why it stopped."""

    instance: TensorBoardInstance
    ready: bool
    error: str = ""


def logs_dir(settings: Settings) -> Path:
    """Where TensorBoard processes write their output."""
    return settings.data_dir / "tensorboard"


def log_path(settings: Settings, instance_id: int) -> Path:
    """The output file of one instance's process."""
    return logs_dir(settings) / f"{instance_id}.log"


def runs_path(settings: Settings, instance_id: int) -> Path:
    """The folder of one instance's run links (run name -> log dir)."""
    return logs_dir(settings) / "runs" / str(instance_id)


def job_logdir(settings: Settings, job_id: int) -> Path:
    """Where a job writes its TensorBoard event files. The job writes that folder, and
    TensorBoard follows links, so a job that made `output/` or `output/tensorboard` a link,
    or put a link inside leading out of it, is refused (InvalidInput naming the link)."""
    folder = jobs_service.job_dir(settings, job_id)
    logdir = folder / "output" / "tensorboard"
    for path in (logdir.parent, logdir):
        if path.is_symlink():
            raise InvalidInput(
                f"Job {job_id}'s {path.relative_to(folder).as_posix()} is a link; TensorBoard "
                "does not follow links out of a job's folder."
            )
    if logdir.is_dir():
        try:
            paths.check_tree(logdir)
        except InvalidInput as exc:
            raise InvalidInput(f"Job {job_id}: {exc.message}") from None
    return logdir


def run_name(*parts: object) -> str:
    """A TensorBoard run name from parts: no commas, colons or other separators."""
    text = "-".join(str(p) for p in parts if str(p))
    return RUN_NAME_BAD.sub("_", text).strip("_.")[:80] or "run"


def logdir_key(paths: Iterable[str]) -> str:
    """The identity of a log dir set (order does not matter)."""
    return hashlib.sha256(json.dumps(sorted(set(paths))).encode()).hexdigest()


# ------------------------------------------------------------------------ open


def open_for_jobs(
    db: Session, settings: Settings, user: User, job_ids: Sequence[int]
) -> TensorBoardInstance:
    """The TensorBoard showing these jobs (one run per job, named by its display name)."""
    unique = list(dict.fromkeys(job_ids))
    if not unique:
        raise InvalidInput("Choose at least one job.", field="job_ids")
    if len(unique) > MAX_RUNS:
        raise InvalidInput(f"One TensorBoard shows at most {MAX_RUNS} jobs.", field="job_ids")
    jobs = [jobs_service.get_job(db, user, job_id) for job_id in unique]
    projects = {job.project_id for job in jobs}
    if len(projects) > 1:
        raise InvalidInput(
            "Jobs of different projects cannot share a TensorBoard.", field="job_ids"
        )
    spec: dict[str, str] = {}
    for job in jobs:
        name = naming.safe_dirname(job.name)
        if name in spec:  # two jobs of same-named labs: the id tells them apart
            name = naming.safe_dirname(f"{job.name}{naming.SEP}job {job.id}")
        spec[name] = str(job_logdir(settings, job.id))
    return _open(db, settings, user, project_id=projects.pop(), spec=spec)


def open_for_sweep(
    db: Session, settings: Settings, user: User, sweep_id: int
) -> TensorBoardInstance:
    """The TensorBoard showing every job of a sweep."""
    jobs_service.get_sweep(db, user, sweep_id)
    job_ids = list(db.scalars(select(Job.id).where(Job.sweep_id == sweep_id).order_by(Job.id)))
    if not job_ids:
        raise InvalidInput("This sweep has no jobs.")
    return open_for_jobs(db, settings, user, job_ids[:MAX_RUNS])


def open_for_logdir(
    db: Session, settings: Settings, user: User, *, source: str, source_id: int, path: str
) -> TensorBoardInstance:
    """The TensorBoard for a folder inside a lab's or a job's files (`path` is relative)."""
    if source == "lab":
        lab = labs_service.get_lab(db, user, source_id)
        project_id, root = lab.project_id, labs_service.lab_dir(settings, lab.id)
        name = run_name("lab", lab.name, path.strip("/"))
    elif source == "job":
        job = jobs_service.get_job(db, user, source_id)
        project_id, root = job.project_id, jobs_service.job_dir(settings, job.id)
        name = naming.safe_dirname(f"{job.name}{naming.SEP}{path.strip('/')}")
    else:
        raise InvalidInput("The source must be `lab` or `job`.", field="source")
    folder = paths.resolve_existing(root, path)  # NotFound for ../, absolute or outward links
    if not folder.is_dir():
        raise InvalidInput("Choose a folder, not a file.", field="path")
    paths.check_tree(folder)  # nor links inside it that TensorBoard would follow out
    return _open(db, settings, user, project_id=project_id, spec={name: str(folder)})


def _open(
    db: Session, settings: Settings, user: User, *, project_id: int, spec: dict[str, str]
) -> TensorBoardInstance:
    if any("," in path for path in spec.values()):
        raise InvalidInput("TensorBoard cannot read a folder whose path has a comma.", field="path")
    key = logdir_key(spec.values())
    with _open_lock:
        existing = db.scalars(
            select(TensorBoardInstance).where(
                TensorBoardInstance.key == key,
                TensorBoardInstance.project_id == project_id,
                TensorBoardInstance.status.in_(LIVE_STATUSES),
            )
        ).first()
        if existing is not None and _check_alive(db, existing):
            existing.last_access_at = utcnow()
            return existing
        _require_room(db, settings)
        instance = TensorBoardInstance(
            project_id=project_id, started_by_id=user.id, key=key, logdir_spec=spec
        )
        db.add(instance)
        db.flush()
        instance.port = process.free_port()
        args = process.command(instance.id, runs_path(settings, instance.id), instance.port)
        try:
            process.link_runs(runs_path(settings, instance.id), spec)
            instance.pid, instance.process_started_at = process.spawn(
                args, log_path(settings, instance.id)
            )
        except OSError as exc:
            raise Conflict(f"TensorBoard could not start: {exc.strerror or exc}.") from exc
        # commit now: a running process must never be left without its row
        db.commit()
        return instance


def _require_room(db: Session, settings: Settings) -> None:
    """Conflict when the most TensorBoards the server allows are running (dead ones freed)."""
    live = list(
        db.scalars(select(TensorBoardInstance).where(TensorBoardInstance.status.in_(LIVE_STATUSES)))
    )
    running = sum(1 for instance in live if _check_alive(db, instance))
    limit = settings.tensorboard_max_instances
    if running >= limit:
        raise Conflict(
            f"{running} TensorBoards are running, the most this server allows ({limit}). "
            "Stop one on the TensorBoards page, or wait until an idle one stops."
        )


def _set_status(db: Session, instance: TensorBoardInstance, status: Status) -> None:
    """Record a status found by probing; from a read session (a GET), in a write of its own."""
    if not is_read_session(db):
        instance.status = status
        return
    with write_beside(db) as writer:
        writer.execute(
            update(TensorBoardInstance)
            .where(TensorBoardInstance.id == instance.id)
            .values(status=status)
        )
    set_committed_value(instance, "status", status)


def _check_alive(db: Session, instance: TensorBoardInstance) -> bool:
    """True if the instance's process lives; otherwise mark it stopped."""
    if process.is_alive(instance.pid, instance.process_started_at):
        return True
    _set_status(db, instance, Status.STOPPED)
    return False


# ------------------------------------------------------------------------ read


def get_instance(db: Session, user: User, instance_id: int) -> TensorBoardInstance:
    """One instance, if the user may READ its project (else NotFound, as if absent)."""
    return require_owned(db, user, TensorBoardInstance, instance_id, noun="TensorBoard")


def list_instances(db: Session, user: User) -> list[TensorBoardInstance]:
    """The running (or starting) instances the user can see, newest first."""
    query = (
        select(TensorBoardInstance)
        .where(TensorBoardInstance.status.in_(LIVE_STATUSES))
        .order_by(TensorBoardInstance.id.desc())
    )
    if not user.is_admin:
        query = query.where(TensorBoardInstance.project_id.in_(visible_project_ids(db, user)))
    return list(db.scalars(query))


def can_stop(db: Session, user: User, instance: TensorBoardInstance) -> bool:
    """Its starter, WRITE members of its project and admins may stop an instance."""
    if instance.started_by_id == user.id:
        return True
    role = role_of(db, user, instance.project_id)
    return role is not None and role >= Role.WRITE


def readiness(db: Session, settings: Settings, user: User, instance_id: int) -> Readiness:
    """Whether the instance answers yet; a dead process is marked stopped with its output."""
    instance = get_instance(db, user, instance_id)
    if instance.status == Status.STOPPED:
        return Readiness(instance, False, "This TensorBoard has stopped. Open it again.")
    if not _check_alive(db, instance):
        tail = process.log_tail(log_path(settings, instance.id))
        return Readiness(instance, False, f"TensorBoard exited.\n{tail}".strip())
    if instance.status == Status.STARTING and process.answers(instance.port, instance.id):
        _set_status(db, instance, Status.RUNNING)
    return Readiness(instance, instance.status == Status.RUNNING)


def instance_for_proxy(db: Session, user: User, instance_id: int) -> TensorBoardInstance:
    """The instance a proxied request goes to (READ); reads only (see note_access)."""
    instance = get_instance(db, user, instance_id)
    if instance.status == Status.STOPPED or instance.port is None:
        raise NotFound("This TensorBoard has stopped; open it again from its job or sweep.")
    return instance


def note_access(database: Database, instance: TensorBoardInstance) -> None:
    """Note a proxied request's access at most once a minute, in a write of its own on a
    background thread: the request never waits for the write lock (another writer may hold
    it for seconds), and the idle reaper sees the note once it lands."""
    now = utcnow()
    if now - instance.last_access_at < TOUCH_EVERY:
        return
    with _touch_lock:
        if instance.id in _touch_pending:
            return
        _touch_pending.add(instance.id)
    _touch_pool.submit(_write_access, database, instance.id, now)


def flush_access_notes() -> None:
    """Wait until the access notes asked for so far are written (tests, shutdown)."""
    _touch_pool.submit(lambda: None).result()


def _write_access(database: Database, instance_id: int, when: datetime) -> None:
    try:
        with database.session() as db:
            db.execute(
                update(TensorBoardInstance)
                .where(TensorBoardInstance.id == instance_id)
                .values(last_access_at=when)
            )
    except Exception:  # noqa: BLE001 - a lost note only makes the reaper stop it sooner
        log.exception("noting TensorBoard %s's last access failed", instance_id)
    finally:
        with _touch_lock:
            _touch_pending.discard(instance_id)


# ------------------------------------------------------------------------ stop


def stop_instance(db: Session, user: User, instance_id: int) -> TensorBoardInstance:
    """Stop an instance (its starter, WRITE members, admins); stopping twice is harmless."""
    instance = get_instance(db, user, instance_id)
    if not can_stop(db, user, instance):
        raise PermissionDenied("Only who started this TensorBoard or a WRITE member may stop it.")
    _stop(instance)
    return instance


def _stop(instance: TensorBoardInstance) -> None:
    process.terminate(instance.pid, instance.process_started_at)
    instance.status = Status.STOPPED


def reap(db: Session, settings: Settings) -> list[int]:
    """Stop instances idle longer than the setting, and mark dead ones stopped; their ids."""
    idle_since = utcnow() - timedelta(minutes=settings.tensorboard_idle_minutes)
    stopped: list[int] = []
    live = db.scalars(
        select(TensorBoardInstance).where(TensorBoardInstance.status.in_(LIVE_STATUSES))
    )
    for instance in list(live):
        if not _check_alive(db, instance):
            stopped.append(instance.id)
        elif instance.last_access_at < idle_since:
            _stop(instance)
            stopped.append(instance.id)
    return stopped


def stop_children(db: Session) -> int:
    """Stop the live instances whose process this server started (server shutdown)."""
    live = db.scalars(
        select(TensorBoardInstance).where(TensorBoardInstance.status.in_(LIVE_STATUSES))
    )
    count = 0
    for instance in list(live):
        if process.is_our_child(instance.pid):
            _stop(instance)
            count += 1
    return count


def count_live(db: Session) -> int:
    """How many instances the database says are starting or running."""
    query = select(func.count()).select_from(TensorBoardInstance)
    return db.scalar(query.where(TensorBoardInstance.status.in_(LIVE_STATUSES))) or 0


def stop_project_instances(db: Session, settings: Settings, project_id: int) -> list[Path]:
    """A project is being deleted: stop its TensorBoards (their rows go with it); their logs."""
    rows = list(
        db.scalars(select(TensorBoardInstance).where(TensorBoardInstance.project_id == project_id))
    )
    for instance in rows:
        if instance.status in LIVE_STATUSES:  # no status update: the rows are about to go
            process.terminate(instance.pid, instance.process_started_at)
    return [log_path(settings, i.id) for i in rows] + [runs_path(settings, i.id) for i in rows]
