"""Background extraction: a thread pool in the server, task state in the `dataset_tasks` table.

A task goes queued -> running -> moving -> done (or failed / cancelled). Entries are checked
and written in one pass to `.work/extract-<task id>` on the datasets' filesystem (removed on
any failure); only when all of them are written does the task become `moving` and rename the
top-level entries into the dataset. On start,
`recover` fails tasks a server stop interrupted (removing their temporary folders) and
finishes the renames of tasks that had reached `moving`, so a dataset never holds a part.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard import paths
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import archives, service
from labyard.datasets.models import Dataset, DatasetTask
from labyard.db import Database, utcnow
from labyard.errors import Conflict, DomainError, InvalidInput, NotFound
from labyard.projects.models import Role

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5
MAX_MESSAGE = 1000  # characters of a task's message (its column holds 2000)


def temp_dir(settings: Settings, task_id: int) -> Path:
    """The temporary folder a task extracts into."""
    return service.work_dir(settings) / f"extract-{task_id}"


class TaskRunner:
    """Runs extraction tasks on a small thread pool; one cancel flag per running task."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, settings.dataset_workers), thread_name_prefix="labyard-extract"
        )
        self.cancels: dict[int, threading.Event] = {}
        self.lock = threading.Lock()

    def submit(self, task_id: int) -> None:
        """Queue a committed task."""
        with self.lock:
            self.cancels[task_id] = threading.Event()
        self.pool.submit(self._run_logged, task_id)

    def cancel(self, task_id: int) -> None:
        """Ask a running task to stop."""
        with self.lock:
            event = self.cancels.get(task_id)
        if event is not None:
            event.set()

    def shutdown(self) -> None:
        """Cancel everything and wait for the workers."""
        with self.lock:
            for event in self.cancels.values():
                event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _run_logged(self, task_id: int) -> None:
        try:
            run_task(self.settings, self.database, task_id, self.cancels[task_id])
        except Exception:  # noqa: BLE001 - a worker thread must not die silently
            log.exception("extraction task %s failed", task_id)
        finally:
            with self.lock:
                self.cancels.pop(task_id, None)


def limits_of(settings: Settings) -> archives.Limits:
    """The bomb limits from the settings."""
    return archives.Limits(
        settings.archive_max_entries, settings.archive_max_bytes, settings.archive_max_ratio
    )


# ---------------------------------------------------------------- service functions


def start_extraction(
    db: Session, settings: Settings, *, user: User, dataset_id: int, path: str
) -> DatasetTask:
    """Queue the extraction of the archive at `path` into its folder (WRITE)."""
    dataset = service.get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    root = service.dataset_dir(settings, dataset)
    archive = paths.resolve_existing(root, path)
    if not archive.is_file() or not archives.is_archive(archive.name):
        raise InvalidInput(
            "Only .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz and .zip files can be extracted.",
            field="path",
        )
    task = DatasetTask(
        dataset_id=dataset.id,
        source_path=paths.relative(root, archive),
        target_path=paths.relative(root, archive.parent),
        created_by_id=user.id,
    )
    db.add(task)
    db.flush()
    return task


def get_task(db: Session, *, user: User, task_id: int) -> DatasetTask:
    """A task of a dataset the user can read."""
    task = db.get(DatasetTask, task_id)
    if task is None:
        raise NotFound("No such task.")
    service.get_dataset_for_user(db, user, task.dataset_id)
    return task


def list_tasks(db: Session, *, user: User, dataset_id: int) -> list[DatasetTask]:
    """The dataset's latest tasks, newest first."""
    service.get_dataset_for_user(db, user, dataset_id)
    query = select(DatasetTask).where(DatasetTask.dataset_id == dataset_id)
    return list(db.scalars(query.order_by(DatasetTask.id.desc()).limit(20)))


def cancel_task(db: Session, runner: TaskRunner, *, user: User, task_id: int) -> DatasetTask:
    """Cancel a queued or running extraction (WRITE)."""
    task = db.get(DatasetTask, task_id)
    if task is None:
        raise NotFound("No such task.")
    service.get_dataset_for_user(db, user, task.dataset_id, Role.WRITE)
    if task.finished or task.status == "moving":
        raise Conflict(f"The task is already {task.status}.")
    runner.cancel(task.id)
    if task.status == "queued":
        task.status, task.message, task.finished_at = "cancelled", "Cancelled.", utcnow()
    return task


# ---------------------------------------------------------------- the worker


def _update(database: Database, task_id: int, **values: object) -> None:
    with database.session() as db:
        task = db.get(DatasetTask, task_id)
        if task is not None:
            for key, value in values.items():
                setattr(task, key, value)


def run_task(settings: Settings, database: Database, task_id: int, cancel: threading.Event) -> None:
    """Extract one task's archive; every outcome is recorded on the task."""
    with database.session() as db:
        task = db.get(DatasetTask, task_id)
        if task is None or task.status != "queued":
            return
        dataset = db.get(Dataset, task.dataset_id)
        assert dataset is not None
        task.status = "running"
        root = service.dataset_dir(settings, dataset)
        source, target = task.source_path, task.target_path
    work = temp_dir(settings, task_id)
    try:
        _extract_and_move(settings, database, task_id, root, source, target, work, cancel)
    except Exception as exc:
        shutil.rmtree(work, ignore_errors=True)  # gone before the outcome can be seen
        if isinstance(exc, archives.ExtractionCancelled):
            status, message = "cancelled", "Cancelled."
        elif isinstance(exc, DomainError):
            status, message = "failed", exc.message
        else:
            status, message = "failed", f"Extraction failed: {_reason(exc, work)}"
        if len(message) > MAX_MESSAGE:  # entry names can be long; the column is not
            message = message[: MAX_MESSAGE - 1] + "…"
        _update(database, task_id, status=status, message=message, finished_at=utcnow())
        if not isinstance(exc, DomainError):
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _reason(exc: Exception, work: Path) -> str:
    """What went wrong, naming files as the archive does (never the server's paths)."""
    if isinstance(exc, OSError):
        return paths.os_error_message(exc, work)
    return type(exc).__name__


def _extract_and_move(
    settings: Settings,
    database: Database,
    task_id: int,
    root: Path,
    source: str,
    target: str,
    work: Path,
    cancel: threading.Event,
) -> None:
    archive = paths.resolve_existing(root, source)
    folder = paths.resolve_existing(root, target)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    last = [0.0]

    def progress(done_bytes: int, done_entries: int, total_bytes: int, total_entries: int) -> None:
        now = time.monotonic()  # the extractor calls this in batches; the DB at most every 0.5 s
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            _update(
                database,
                task_id,
                done_bytes=done_bytes,
                done_entries=done_entries,
                total_bytes=total_bytes,
                total_entries=total_entries,
            )

    result = archives.extract(
        archive,
        work,
        limits_of(settings),
        cancel=cancel,
        progress=progress,
        on_top_level=lambda name: _refuse_clashes(folder, {name}),
    )
    if cancel.is_set():
        raise archives.ExtractionCancelled("The extraction was cancelled.")
    _refuse_clashes(folder, {p.name for p in work.iterdir()})
    _update(
        database,
        task_id,
        status="moving",
        total_bytes=result.total_bytes,
        done_bytes=result.total_bytes,
        total_entries=result.entries,
        done_entries=result.entries,
    )
    finish_move(settings, database, task_id, work, folder)


def _refuse_clashes(folder: Path, names: set[str]) -> None:
    clashes = sorted(name for name in names if (folder / name).exists())
    if clashes:
        shown = ", ".join(repr(c) for c in clashes[:5])
        raise Conflict(
            f"Extraction refused, nothing was extracted: {shown} already exist(s) in the folder."
        )


def finish_move(
    settings: Settings, database: Database, task_id: int, work: Path, folder: Path
) -> None:
    """Rename what is left in `work` into `folder`, then mark the task done."""
    if work.exists():
        for item in sorted(work.iterdir()):
            if not (folder / item.name).exists():
                item.rename(folder / item.name)
    shutil.rmtree(work, ignore_errors=True)
    with database.session() as db:
        task = db.get(DatasetTask, task_id)
        if task is None:
            return
        dataset = db.get(Dataset, task.dataset_id)
        if dataset is not None:
            service.refresh_stats(db, settings, dataset)
        task.status, task.finished_at = "done", utcnow()
        task.message = f"Extracted {task.total_entries} entries."


def recover(settings: Settings, database: Database) -> None:
    """After a restart: fail interrupted tasks (removing their temp folders), finish moves."""
    with database.session() as db:
        rows = list(
            db.scalars(
                select(DatasetTask).where(DatasetTask.status.in_(("queued", "running", "moving")))
            )
        )
        moving = []
        for task in rows:
            if task.status == "moving":
                moving.append(task)
                continue
            shutil.rmtree(temp_dir(settings, task.id), ignore_errors=True)
            task.status, task.finished_at = "failed", utcnow()
            task.message = "Interrupted by a server restart; nothing was extracted."
        plans = []
        for task in moving:
            dataset = db.get(Dataset, task.dataset_id)
            if dataset is None:
                continue
            try:  # the folder may have been removed (or made a link) since
                folder = paths.resolve_existing(
                    service.dataset_dir(settings, dataset), task.target_path
                )
            except NotFound:
                task.status, task.finished_at = "failed", utcnow()
                task.message = "The target folder is gone; nothing was extracted."
                shutil.rmtree(temp_dir(settings, task.id), ignore_errors=True)
                continue
            plans.append((task.id, folder))
    for task_id, folder in plans:
        finish_move(settings, database, task_id, temp_dir(settings, task_id), folder)


_runner_lock = threading.Lock()


def runner_for(app: Any) -> TaskRunner:
    """The app's task runner (started by lifecycle.start; made here if the app was not)."""
    with _runner_lock:
        runner: TaskRunner | None = getattr(app.state, "dataset_runner", None)
        if runner is None:
            runner = TaskRunner(app.state.settings, app.state.db)
            app.state.dataset_runner = runner
        return runner
