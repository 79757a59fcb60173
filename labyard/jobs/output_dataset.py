"""Save a finished job's output (or a folder of it) as a new dataset of the job's project.

The order keeps slow work out of the write transaction and leaves nothing behind:

1. Checks, before any byte moves: WRITE on the job's project (non-members NotFound, READ
   PermissionDenied), the job finished (Conflict), the name valid and free (Conflict), the
   folder inside the output (`labyard.paths`: `..` and links leading out are NotFound), no
   links or special files in it (InvalidInput), the project's dataset quota (TooLarge).
2. The request's transaction ends (its write lock is released), then the files are copied
   into `.work/job-output-<random>` on the datasets' filesystem, each opened without
   following links; any failure removes the copy.
3. The dataset row is created (`create_dataset`: the name is checked again under the unique
   index), its size and file count taken from the copy, its insight read from the copy.
4. Once that transaction commits the copy is renamed onto the dataset's (empty) folder,
   before the response leaves; a rollback removes the copy and the empty folder instead.

A lab whose mlsteam.yml has an `output_dataset:` block (labyard.outputspec) gets this done
by the platform when a job succeeds, through the same function, as the job's submitter:
`job_ended` (jobs.JOB_FINISHED, wired in labyard.app) marks a succeeded job
`output_save_pending` in the transaction of its final status; `save_pending_outputs` (a
scheduler step) reads the marked jobs from the database and hands them to a thread, so a
long copy never holds up the scheduler, and a job that ended just before the server stopped
is saved after its restart. The outcome lands in the job's `reason` ("Output saved as
dataset ..." or "Output not saved as a dataset: <why>"), shown on the job page and in GET
/api/v1/jobs/{id}, and clears the mark in the same transaction as the new dataset; a
refused save writes nothing and the job stays succeeded, its Save as dataset button usable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from labyard import paths
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets
from labyard.datasets.insight import InsightOut, analyse
from labyard.datasets.models import Dataset
from labyard.db import Database
from labyard.db.oncommit import on_commit
from labyard.errors import Conflict, DomainError, InvalidInput, NotFound, TooLarge
from labyard.jobs.artifacts import config_text, output_root
from labyard.jobs.models import FINAL_STATUSES, Job, JobStatus
from labyard.jobs.service import get_job
from labyard.mlsteam import parse_mlsteam
from labyard.outputspec import OutputDatasetSpec
from labyard.projects.models import Role

COPY_CHUNK = 1024 * 1024
MAX_NAMED = 5  # offending paths named in a message
NOT_SAVED = "Output not saved as a dataset: "
log = logging.getLogger(__name__)
PENDING_BATCH = 50  # marked jobs handed to one thread per scheduler tick
# (database URL, job id) of marked jobs a thread of this process is saving now
_in_flight: set[tuple[str, int]] = set()
_in_flight_lock = threading.Lock()


@dataclass(frozen=True)
class OutputDataset:
    """The dataset made from a job's output, and its insight."""

    dataset: Dataset
    insight: InsightOut


@dataclass(frozen=True)
class _Tree:
    """What will be copied: folders and files (with sizes), relative to the source."""

    folders: list[str]
    files: list[tuple[str, int]]

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)


def save_output_as_dataset(
    db: Session, settings: Settings, *, user: User, job_id: int, name: str, path: str = ""
) -> OutputDataset:
    """Copy the finished job's output folder (or its sub-folder `path`) into a new dataset
    `name` of the job's project (WRITE on the project)."""
    job = get_job(db, user, job_id, Role.WRITE)
    if job.status not in FINAL_STATUSES:
        raise Conflict(f"The job is {job.status}; save its output once it has finished.")
    name = datasets.clean_dataset_name(name)
    _refuse_taken(db, job.project_id, name)
    source = _source_folder(settings, job_id, path)
    tree = _scan(source)
    _check_quota(db, settings, job.project_id, tree.size)
    folder = "/".join(paths.split_relative(path))
    project_id = job.project_id
    description = f"Output of job #{job_id} {job.name}" + (f", folder {folder}/" if folder else "")
    db.commit()  # ends the write transaction: the copy below holds no database lock
    temp = datasets.work_dir(settings) / f"job-output-{uuid.uuid4().hex}"
    try:
        _copy(source, tree, temp)
        insight = analyse(temp)
        dataset = datasets.create_dataset(
            db, settings, user=user, name=name, project_id=project_id, description=description
        )
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    dataset.size_bytes, dataset.file_count = paths.tree_stats(temp)
    place_after_commit(db, temp, datasets.dataset_dir(settings, dataset))
    return OutputDataset(dataset, insight)


def _refuse_taken(db: Session, project_id: int, name: str) -> None:
    taken = select(Dataset.id).where(Dataset.project_id == project_id, Dataset.name == name)
    if db.scalar(taken) is not None:
        raise Conflict(f"A dataset named {name!r} already exists here.", field="name")


def _source_folder(settings: Settings, job_id: int, path: str) -> Path:
    """The output folder or the folder `path` inside it: never through a link."""
    root = output_root(settings, job_id)  # NotFound when the job made output/ a link
    if not root.is_dir():
        raise NotFound("The job has no output folder.", field="path")
    target = paths.resolve_existing(root, path)  # `..` or a link leading out: NotFound
    if target != root.joinpath(*paths.split_relative(path)):
        raise InvalidInput(f"{path!r} is a link; choose the folder itself.", field="path")
    if not target.is_dir():
        raise InvalidInput(f"{path!r} is a file; choose a folder of the output.", field="path")
    return target


def _scan(source: Path) -> _Tree:
    """Every folder and regular file under `source`; InvalidInput naming the links and
    special files (they are never copied, and silently dropping them would surprise)."""
    tree, refused = _Tree([], []), []
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames.sort()
        for entry in dirnames + sorted(filenames):
            full = Path(dirpath) / entry
            rel = full.relative_to(source).as_posix()
            info = os.lstat(full)
            if stat.S_ISDIR(info.st_mode):
                tree.folders.append(rel)
            elif stat.S_ISREG(info.st_mode):
                tree.files.append((rel, info.st_size))
            else:
                refused.append(rel)
    if refused:
        named = ", ".join(repr(p) for p in refused[:MAX_NAMED])
        more = f" and {len(refused) - MAX_NAMED} more" if len(refused) > MAX_NAMED else ""
        raise InvalidInput(
            f"The folder holds links or special files, which a dataset cannot take: "
            f"{named}{more}. Choose a folder without them.",
            field="path",
        )
    return tree


def _check_quota(db: Session, settings: Settings, project_id: int, size: int) -> None:
    from labyard.web.render import human_size

    room = settings.dataset_project_quota_bytes - datasets.project_usage(db, project_id)
    if size > room:
        raise TooLarge(
            f"The folder ({human_size(size)}) would exceed the project's dataset quota of "
            f"{human_size(settings.dataset_project_quota_bytes)} ({human_size(max(room, 0))} "
            f"left)."
        )


def _copy(source: Path, tree: _Tree, dest: Path) -> None:
    """Copy the scanned tree into the new folder `dest`; a file that became a link or
    vanished since the scan is a Conflict."""
    dest.mkdir()
    try:
        for rel in tree.folders:
            (dest / rel).mkdir()
        for rel, _size in tree.files:
            with paths.open_nofollow(source / rel) as src, open(dest / rel, "xb") as out:
                shutil.copyfileobj(src, out, COPY_CHUNK)
    except OSError as exc:
        raise Conflict(
            f"The output changed while it was copied: {paths.os_error_message(exc, source)}."
        ) from exc


def place_after_commit(db: Session, temp: Path, folder: Path) -> None:
    """Rename `temp` onto the empty `folder` (a dataset's or weights') once the transaction
    commits; on a rollback remove both instead."""
    state = {"committed": False}

    def place() -> None:
        state["committed"] = True
        os.replace(temp, folder)

    def discard(_session: Session, previous: SessionTransaction) -> None:
        if previous.parent is None and not state["committed"]:
            state["committed"] = True  # once
            shutil.rmtree(temp, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.rmdir()

    on_commit(db, place)
    event.listen(db, "after_soft_rollback", discard)


# --------------------------------------------------------------------------- automatic


def job_ended(job: Job) -> None:
    """jobs.JOB_FINISHED handler (wired in labyard.app): a succeeded job is marked for
    `save_pending_outputs`, in its final status's transaction (nothing slow here)."""
    if job.status == JobStatus.SUCCEEDED:
        job.output_save_pending = True


def save_pending_outputs(settings: Settings, database: Database) -> None:
    """A scheduler step: save the marked jobs' `output_dataset` folders in a thread."""
    with database.read_session() as db:
        marked = select(Job.id).where(Job.output_save_pending.is_(True))
        job_ids = list(db.scalars(marked.order_by(Job.id).limit(PENDING_BATCH)))
    url = str(database.engine.url)
    with _in_flight_lock:
        fresh = [job_id for job_id in job_ids if (url, job_id) not in _in_flight]
        _in_flight.update((url, job_id) for job_id in fresh)
    if fresh:
        threading.Thread(
            target=_save_all, args=(settings, database, fresh), name="labyard-output-dataset"
        ).start()


def _save_all(settings: Settings, database: Database, job_ids: list[int]) -> None:
    url = str(database.engine.url)
    for job_id in job_ids:
        try:
            auto_save_output(settings, database, job_id)
        except Exception:  # noqa: BLE001 - one job's failure must not stop the others
            log.exception("saving job %s's output as a dataset failed", job_id)
            with contextlib.suppress(Exception):  # the database itself may be what failed
                _tell(database, job_id, f"{NOT_SAVED}an internal error (the server's log has it).")
        finally:
            with _in_flight_lock:
                _in_flight.discard((url, job_id))


def auto_save_output(settings: Settings, database: Database, job_id: int) -> str | None:
    """Save a succeeded job's `output_dataset` folder as a dataset of its project, as its
    submitter; the outcome goes to the job's `reason` and is returned (None: the job's
    mlsteam.yml has no such block, or the job is not a succeeded one)."""
    with database.read_session() as db:
        job = db.get(Job, job_id)
        if job is None:
            return None
        succeeded = job.status == JobStatus.SUCCEEDED
        user_id, values = job.created_by_id, dict(job.params)
        sources = [d["name"] for d in job.datasets if d.get("kind", "input") == "input"]
    # a job that is not succeeded was never marked; a stray mark would be read every tick
    found = _output_spec(settings, job_id) if succeeded else None
    if not isinstance(found, OutputDatasetSpec):
        return _tell(database, job_id, found)
    return _save(settings, database, job_id, user_id, found, values, sources)


def _output_spec(settings: Settings, job_id: int) -> OutputDatasetSpec | str | None:
    """The job's `output_dataset:` block; None without one, a message when its snapshot's
    mlsteam.yml no longer parses (the job rewrote it)."""
    text = config_text(settings, job_id)
    if text is None or "output_dataset" not in text:
        return None
    try:
        return parse_mlsteam(text).output_dataset
    except DomainError as exc:
        return f"{NOT_SAVED}its mlsteam.yml: {exc.message}"


def _save(
    settings: Settings,
    database: Database,
    job_id: int,
    user_id: int | None,
    spec: OutputDatasetSpec,
    values: dict[str, object],
    sources: list[str],
) -> str:
    """Make the dataset as the submitter, and tell the job in the same transaction (a
    crash after the dataset's commit cannot leave the job marked to be saved again)."""
    name = spec.dataset_name(values, sources[0] if sources else "output")
    with database.sessionmaker() as db:
        user = db.get(User, user_id) if user_id is not None else None
        if user is None:
            why = f"{NOT_SAVED}the job's submitter no longer exists."
        else:
            try:
                saved = save_output_as_dataset(
                    db, settings, user=user, job_id=job_id, name=name, path=spec.path
                )
                message = f"Output saved as dataset {name!r} (#{saved.dataset.id})."
                _mark_told(db, job_id, message)
                db.commit()  # the copy is renamed onto the dataset's folder here
                return message
            except DomainError as exc:
                db.rollback()  # nothing is left: no row, no folder, no copy
                why = f"{NOT_SAVED}{exc.message} Save it from the Files tab once fixed."
    _tell(database, job_id, why)
    return why


def _tell(database: Database, job_id: int, message: str | None) -> str | None:
    """The outcome on the job's `reason` (the job page and GET /api/v1/jobs/{id} show it;
    None: nothing to say) and the job's mark cleared; returns `message`."""
    with database.session() as db:
        _mark_told(db, job_id, message)
    return message


def _mark_told(db: Session, job_id: int, message: str | None) -> None:
    job = db.get(Job, job_id)
    if job is not None:
        job.output_save_pending = False
        if message is not None:
            job.reason = message[:500]
