"""Uploads: the resumable-upload records (tus) and placing received files into a dataset.

Bytes always arrive in a server-named work file under `.work/` on the datasets' filesystem
and are renamed into the dataset only when complete, so the dataset never shows a partial
file. Limits are checked before and while bytes arrive (see the HTTP side in tus.py).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from labyard import paths
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service, tasks
from labyard.datasets.models import Dataset, DatasetTask, DatasetUpload
from labyard.db import Database, utcnow
from labyard.errors import Conflict, InvalidInput, NotFound, TooLarge
from labyard.projects.models import Role


@dataclass(frozen=True)
class Placed:
    """A file placed into a dataset, and the extraction task started for it, if any."""

    path: str
    size: int
    task: DatasetTask | None = None


def target_parts(folder: str, name: str) -> tuple[list[str], list[str]]:
    """(folder parts, relative file parts) of an upload: both cleaned, the folder must exist."""
    return paths.split_relative(folder), paths.clean_relative(name, field="filename")


def place_file(
    db: Session,
    settings: Settings,
    *,
    user: User,
    dataset: Dataset,
    work_file: Path,
    folder: str,
    name: str,
    extract: bool = False,
) -> Placed:
    """Rename a complete work file into the dataset at `folder/name`; optionally extract it."""
    root = service.dataset_dir(settings, dataset)
    base = paths.resolve_existing(root, folder)
    if not base.is_dir():
        raise NotFound("No such folder.")
    parts = paths.clean_relative(name, field="filename")
    parent = paths.ensure_folder(base, parts[:-1])
    target = parent / parts[-1]
    if target.is_dir() and not target.is_symlink():
        raise Conflict(f"A folder named {parts[-1]!r} already exists there.")
    replaced = target.lstat().st_size if target.is_file() and not target.is_symlink() else None
    if target.is_symlink():
        target.unlink()
    size = work_file.stat().st_size
    os.replace(work_file, target)
    service.count_placed_file(db, dataset, size=size, replaced=replaced)
    rel = paths.relative(root, target)
    task = None
    if extract:
        task = tasks.start_extraction(db, settings, user=user, dataset_id=dataset.id, path=rel)
    return Placed(rel, size, task)


def new_work_file(settings: Settings) -> Path:
    """A fresh, server-named work file for bytes that are still arriving."""
    return service.work_dir(settings) / f"part-{secrets.token_hex(16)}"


# ---------------------------------------------------------------- tus records


def create_upload(
    db: Session,
    settings: Settings,
    *,
    user: User,
    dataset_id: int,
    length: int,
    folder: str,
    name: str,
    extract: bool = False,
) -> DatasetUpload:
    """Register a resumable upload of `length` bytes (WRITE); TooLarge over the limits."""
    dataset = service.get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    if length < 0:
        raise InvalidInput("Upload-Length must not be negative.")
    paths.clean_relative(name, field="filename")
    root = service.dataset_dir(settings, dataset)
    if not paths.resolve_existing(root, folder).is_dir():
        raise NotFound("No such folder.")
    allowance = service.upload_allowance(db, settings, dataset)
    if length > allowance:
        raise TooLarge(service.limit_message(settings, allowance))
    upload = DatasetUpload(
        id=secrets.token_hex(16),
        dataset_id=dataset.id,
        created_by_id=user.id,
        target_path=json.dumps([folder.strip("/"), name]),
        length=length,
        offset=0,
        extract=extract,
        expires_at=utcnow() + timedelta(hours=settings.dataset_upload_expiry_hours),
    )
    db.add(upload)
    db.flush()
    service.upload_file(settings, upload.id).touch()
    return upload


def get_upload(
    db: Session, settings: Settings, *, user: User, dataset_id: int, upload_id: str
) -> DatasetUpload:
    """An unexpired upload into a dataset the user may write; its offset read from disk."""
    service.get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    upload = db.get(DatasetUpload, upload_id)
    if upload is None or upload.dataset_id != dataset_id or upload.expires_at <= utcnow():
        raise NotFound("No such upload (it may have expired).")
    path = service.upload_file(settings, upload.id)
    if not path.exists():
        raise NotFound("No such upload (it may have expired).")
    # the file is the truth; reading it must not turn a HEAD request into a database write
    set_committed_value(upload, "offset", path.stat().st_size)
    return upload


def record_progress(db: Session, settings: Settings, *, upload: DatasetUpload) -> None:
    """Note what arrived: the offset from disk and a later expiry."""
    upload.offset = service.upload_file(settings, upload.id).stat().st_size
    upload.expires_at = utcnow() + timedelta(hours=settings.dataset_upload_expiry_hours)


def complete_upload(
    db: Session, settings: Settings, *, user: User, upload: DatasetUpload
) -> Placed:
    """Move a finished upload into its dataset and forget the record."""
    dataset = db.get(Dataset, upload.dataset_id)
    assert dataset is not None
    folder, name = json.loads(upload.target_path)
    work = service.upload_file(settings, upload.id)
    db.delete(upload)
    db.flush()
    return place_file(
        db,
        settings,
        user=user,
        dataset=dataset,
        work_file=work,
        folder=folder,
        name=name,
        extract=upload.extract,
    )


def terminate_upload(
    db: Session, settings: Settings, *, user: User, dataset_id: int, upload_id: str
) -> None:
    """Abandon an upload: its bytes and record are removed."""
    upload = get_upload(db, settings, user=user, dataset_id=dataset_id, upload_id=upload_id)
    service.upload_file(settings, upload.id).unlink(missing_ok=True)
    db.delete(upload)


def reap_expired(settings: Settings, database: Database, *, now: datetime | None = None) -> int:
    """Remove expired uploads and stray work files; answer how many uploads went."""
    now = now or utcnow()
    with database.session() as db:
        expired = list(db.scalars(select(DatasetUpload).where(DatasetUpload.expires_at <= now)))
        for upload in expired:
            service.upload_file(settings, upload.id).unlink(missing_ok=True)
            db.delete(upload)
        live = set(db.scalars(select(DatasetUpload.id)))
    for path in service.work_dir(settings).glob("upload-*"):
        if path.name.removeprefix("upload-") not in live:
            path.unlink(missing_ok=True)
    return len(expired)
