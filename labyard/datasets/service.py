"""Datasets: create, find, list, delete, publish; file operations; the in-use registry.

Other domains call `dataset_dir`, `get_dataset_for_user` and `find_dataset_by_name`; the
jobs domain's check is connected to IN_USE_CHECKS (in labyard.app.wire_hooks) so a dataset
a queued or running job uses cannot be deleted.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from labyard import paths
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import files
from labyard.datasets.models import PUBLIC_NAME, Dataset, DatasetTask, DatasetUpload
from labyard.db.unique import save_unique
from labyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labyard.hooks import HookPoint
from labyard.projects.models import Role
from labyard.projects.service import (
    clean_display_name,
    remove_tree,
    require_project,
    role_of,
    visible_project_ids,
)

InUseCheck = Callable[[Session, int], str | None]
# `fn(db, dataset_id) -> reason | None`; a reason refuses deleting the dataset.
IN_USE_CHECKS: HookPoint[InUseCheck] = HookPoint("datasets.in_use_checks")


def datasets_root(settings: Settings) -> Path:
    """The folder holding every dataset's folder."""
    return settings.data_dir / "datasets"


def work_dir(settings: Settings) -> Path:
    """Scratch space on the datasets' filesystem: partial uploads, extraction temp dirs."""
    path = datasets_root(settings) / ".work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def dataset_dir(settings: Settings, dataset: Dataset) -> Path:
    """The folder holding the dataset's files."""
    return datasets_root(settings) / str(dataset.id)


# ---------------------------------------------------------------- access


def get_dataset_for_user(
    db: Session, user: User, dataset_id: int, need: Role = Role.READ
) -> Dataset:
    """The dataset if `user` holds `need` on it; public ones are readable by all, writable by
    none. Non-members get NotFound, too-low roles PermissionDenied."""
    dataset = db.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound("No such dataset.")
    if dataset.project_id is None:
        if not dataset.is_public:
            raise NotFound("No such dataset.")
        if need > Role.READ:
            raise PermissionDenied(f"Dataset {dataset.name!r} is public and read-only.")
        return dataset
    try:
        require_project(db, user, dataset.project_id, need)
    except NotFound:
        raise NotFound("No such dataset.") from None
    if need > Role.READ and dataset.is_public:
        raise PermissionDenied(f"Dataset {dataset.name!r} is public and read-only.")
    return dataset


def can_write(db: Session, user: User, dataset: Dataset) -> bool:
    """True when the user may change the dataset's files."""
    if dataset.is_public or dataset.project_id is None:
        return False
    role = role_of(db, user, dataset.project_id)
    return role is not None and role >= Role.WRITE


def find_dataset_by_name(
    db: Session, user: User, name: str, project_id: int | None
) -> Dataset | None:
    """The dataset called `name` the user can read: the project's own first, then public."""
    if project_id is not None:
        require_project(db, user, project_id, Role.READ)
        own = db.scalar(
            select(Dataset).where(Dataset.project_id == project_id, Dataset.name == name)
        )
        if own is not None:
            return own
    return db.scalar(
        select(Dataset).where(Dataset.is_public.is_(True), Dataset.name == name).limit(1)
    )


def list_datasets(db: Session, user: User, *, project_id: int | None = None) -> list[Dataset]:
    """The datasets of the user's projects (or of one project) and the public ones, by name."""
    if project_id is not None:
        require_project(db, user, project_id, Role.READ)
        projects = [project_id]
    else:
        projects = visible_project_ids(db, user)
    query = select(Dataset).where(
        or_(Dataset.project_id.in_(projects), Dataset.is_public.is_(True))
    )
    return list(db.scalars(query.order_by(Dataset.is_public, func.lower(Dataset.name))))


# ---------------------------------------------------------------- create / delete


def clean_dataset_name(name: str) -> str:
    """Dataset names become folder names inside jobs (/mlsteam/input/<name>): keep them plain."""
    name = clean_display_name(name, max_length=100)
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    if not set(name) <= allowed or name.startswith("."):
        raise InvalidInput(
            "Dataset names use letters, digits, '-', '_' and '.', and do not start with '.'.",
            field="name",
        )
    return name


def create_dataset(
    db: Session,
    settings: Settings,
    *,
    user: User,
    name: str,
    project_id: int | None,
    description: str = "",
    public: bool = False,
) -> Dataset:
    """A new, empty dataset in a project (WRITE), or a public one (admins only)."""
    name = clean_dataset_name(name)
    if public:
        if not user.is_admin:
            raise PermissionDenied("Only administrators may create public datasets.")
        project_id = None
        clash = select(Dataset.id).where(Dataset.is_public.is_(True), Dataset.name == name)
        constraint = PUBLIC_NAME
    else:
        if project_id is None:
            raise InvalidInput("Choose the project the dataset belongs to.", field="project_id")
        require_project(db, user, project_id, Role.WRITE)
        clash = select(Dataset.id).where(Dataset.project_id == project_id, Dataset.name == name)
        constraint = "uq_datasets_project_id"
    taken = Conflict(f"A dataset named {name!r} already exists here.", field="name")
    if db.scalar(clash) is not None:
        raise taken
    dataset = Dataset(
        name=name,
        description=description.strip()[:2000],
        project_id=project_id,
        is_public=public,
        created_by_id=user.id,
    )
    save_unique(db, constraint, taken, lambda: db.add(dataset))
    dataset_dir(settings, dataset).mkdir(parents=True, exist_ok=True)
    return dataset


def publish_dataset(db: Session, settings: Settings, *, user: User, dataset_id: int) -> Dataset:
    """Make a project dataset public and read-only for everyone (admins only; one way)."""
    if not user.is_admin:
        raise PermissionDenied("Only administrators may publish datasets.")
    dataset = get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    clash = select(Dataset.id).where(Dataset.is_public.is_(True), Dataset.name == dataset.name)
    taken = Conflict(f"A public dataset named {dataset.name!r} already exists.")
    if db.scalar(clash) is not None:
        raise taken

    def publish() -> None:
        dataset.is_public, dataset.project_id = True, None

    save_unique(db, PUBLIC_NAME, taken, publish)
    files.make_read_only(dataset_dir(settings, dataset))
    return dataset


def in_use_reason(db: Session, dataset_id: int) -> str | None:
    """Why the dataset cannot be deleted now, or None."""
    for check in IN_USE_CHECKS.handlers():
        reason = check(db, dataset_id)
        if reason:
            return reason
    busy = db.scalar(
        select(DatasetTask.id).where(
            DatasetTask.dataset_id == dataset_id,
            DatasetTask.status.in_(("queued", "running", "moving")),
        )
    )
    return "an archive is being extracted into it" if busy is not None else None


def delete_dataset(db: Session, settings: Settings, *, user: User, dataset_id: int) -> None:
    """Delete a dataset and its files (WRITE; public ones by admins only), unless in use."""
    dataset = db.get(Dataset, dataset_id)
    if dataset is not None and dataset.is_public and user.is_admin:
        pass  # admins may remove a public dataset; nobody may change one
    else:
        dataset = get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    assert dataset is not None
    reason = in_use_reason(db, dataset.id)
    if reason:
        raise Conflict(f"Dataset {dataset.name!r} is in use: {reason}.")
    folder = dataset_dir(settings, dataset)
    for upload in db.scalars(select(DatasetUpload).where(DatasetUpload.dataset_id == dataset.id)):
        upload_file(settings, upload.id).unlink(missing_ok=True)
    db.delete(dataset)
    db.flush()
    if folder.exists():
        trash = work_dir(settings) / f"trash-{uuid.uuid4().hex}"
        folder.rename(trash)
        with contextlib.suppress(OSError):  # the row is gone; leftover bytes are only trash
            remove_tree(trash)


def upload_file(settings: Settings, upload_id: str) -> Path:
    """The work file holding a resumable upload's bytes (a server-chosen name)."""
    return work_dir(settings) / f"upload-{upload_id}"


# ---------------------------------------------------------------- sizes and quota


def refresh_stats(db: Session, settings: Settings, dataset: Dataset) -> None:
    """Recount the dataset's bytes and files from disk."""
    dataset.size_bytes, dataset.file_count = paths.tree_stats(dataset_dir(settings, dataset))


def count_placed_file(db: Session, dataset: Dataset, *, size: int, replaced: int | None) -> None:
    """Count one file placed into the dataset without walking it (adding many files is
    linear in what was added): `replaced` is the size of the file it replaced, None when it
    is new. The database adds (`x = x + delta`), so concurrent uploads into one dataset
    add up."""
    db.execute(
        update(Dataset)
        .where(Dataset.id == dataset.id)
        .values(
            size_bytes=Dataset.size_bytes + (size - (replaced or 0)),
            file_count=Dataset.file_count + (0 if replaced is not None else 1),
        )
    )
    db.expire(dataset, ["size_bytes", "file_count"])


def project_usage(db: Session, project_id: int) -> int:
    """Bytes a project's datasets hold, plus the full length of unfinished uploads."""
    stored = db.scalar(
        select(func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
            Dataset.project_id == project_id
        )
    )
    pending = db.scalar(
        select(func.coalesce(func.sum(DatasetUpload.length), 0))
        .join(Dataset, Dataset.id == DatasetUpload.dataset_id)
        .where(Dataset.project_id == project_id)
    )
    return int(stored or 0) + int(pending or 0)


def upload_allowance(db: Session, settings: Settings, dataset: Dataset) -> int:
    """How many bytes one upload into `dataset` may still send (size limit and quota)."""
    assert dataset.project_id is not None
    room = settings.dataset_project_quota_bytes - project_usage(db, dataset.project_id)
    return max(0, min(settings.dataset_max_upload_bytes, room))


def limit_message(settings: Settings, allowance: int) -> str:
    """The 413 message naming the limit that was hit."""
    from labyard.web.render import human_size

    if allowance >= settings.dataset_max_upload_bytes:
        return (
            f"The upload is larger than the maximum upload size of "
            f"{human_size(settings.dataset_max_upload_bytes)}."
        )
    return (
        f"The upload would exceed the project's dataset quota of "
        f"{human_size(settings.dataset_project_quota_bytes)} "
        f"({human_size(allowance)} left)."
    )


# ---------------------------------------------------------------- file operations


def make_folder(
    db: Session, settings: Settings, *, user: User, dataset_id: int, path: str, name: str
) -> str:
    """Create folder `name` inside folder `path`; answer its relative path."""
    dataset = get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    root = dataset_dir(settings, dataset)
    target = paths.resolve_new(root, path, name)
    if target.exists() or target.is_symlink():
        raise Conflict(f"{target.name!r} already exists.", field="name")
    target.mkdir()
    return paths.relative(root, target)


def move_entry(
    db: Session,
    settings: Settings,
    *,
    user: User,
    dataset_id: int,
    path: str,
    to_folder: str | None = None,
    new_name: str | None = None,
) -> str:
    """Rename and/or move a file or folder inside the dataset; answer its new path."""
    dataset = get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    root = dataset_dir(settings, dataset)
    source = paths.resolve_existing(root, path)
    if source == root.resolve():
        raise InvalidInput("The dataset's root folder cannot be moved.", field="path")
    folder = to_folder if to_folder is not None else paths.relative(root, source.parent)
    target = paths.resolve_new(root, folder, new_name if new_name is not None else source.name)
    if target == source:
        return paths.relative(root, target)
    if source.is_dir() and target.is_relative_to(source):
        raise InvalidInput("A folder cannot be moved into itself.", field="to")
    if target.exists() or target.is_symlink():
        raise Conflict(f"{target.name!r} already exists there.", field="name")
    paths.check_move(root, source, target)  # a moved link must not point out of the dataset
    source.rename(target)
    return paths.relative(root, target)


def delete_entry(
    db: Session, settings: Settings, *, user: User, dataset_id: int, path: str
) -> None:
    """Delete a file or folder inside the dataset (WRITE)."""
    dataset = get_dataset_for_user(db, user, dataset_id, Role.WRITE)
    root = dataset_dir(settings, dataset)
    parts = paths.split_relative(path)
    if not parts:
        raise InvalidInput("The dataset's root folder cannot be deleted.", field="path")
    parent = paths.resolve_existing(root, "/".join(parts[:-1]))
    target = parent / parts[-1]  # the entry itself, not what a link points to
    if not (target.exists() or target.is_symlink()):
        raise NotFound("No such file or folder.")
    if target.is_dir() and not target.is_symlink():
        trash = work_dir(settings) / f"trash-{uuid.uuid4().hex}"
        target.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        target.unlink()
    refresh_stats(db, settings, dataset)


# ---------------------------------------------------------------- seeding


def seed_sample_datasets(db: Session, settings: Settings) -> list[Dataset]:
    """First start: each shipped sample (labyard.seed) as a public read-only dataset,
    when no public dataset has its name yet; returns the ones created."""
    from labyard.seed import SAMPLE_DATASETS

    created = []
    for sample in SAMPLE_DATASETS:
        clash = select(Dataset.id).where(Dataset.is_public.is_(True), Dataset.name == sample.name)
        if db.scalar(clash) is not None:
            continue
        dataset = Dataset(name=sample.name, description=sample.description, is_public=True)
        db.add(dataset)
        db.flush()
        folder = dataset_dir(settings, dataset)
        if folder.exists():  # a leftover of an interrupted earlier start
            remove_tree(folder)
        sample.write(folder)
        files.make_read_only(folder)
        refresh_stats(db, settings, dataset)
        created.append(dataset)
    return created


def project_dataset_folders(db: Session, settings: Settings, project_id: int) -> list[Path]:
    """The folders of the project's datasets (wired into projects.delete_project)."""
    rows = db.scalars(select(Dataset).where(Dataset.project_id == project_id))
    return [dataset_dir(settings, dataset) for dataset in rows]
