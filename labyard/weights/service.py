"""Weights: find, list, change, publish, delete; the in-use registry; the weights a
submitted job gets (fine-tuning).

Registering lives in labyard.weights.register. Other domains call `mount_inputs` (labs
submit jobs with a `weights` param) and connect IN_USE_CHECKS (labs whose mlsteam.yml
names the weights) in labyard.app.wire_hooks.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets.service import clean_dataset_name
from labyard.db.unique import save_unique
from labyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labyard.hooks import HookPoint
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from labyard.jobs.service import DatasetInput
from labyard.projects.models import Role
from labyard.projects.service import remove_tree, require_project, role_of, visible_project_ids
from labyard.weights.models import Weights

DEFAULT_PATH = "model.onnx"
UNIQUE = "uq_weights_project_id"
WEIGHTS_KIND = "weights"  # the `kind` of a job's mount entry (Job.datasets) for weights
InUseCheck = Callable[[Session, Settings, Weights], str | None]
# `fn(db, settings, weights) -> reason | None`; a reason refuses deleting (or renaming) them.
IN_USE_CHECKS: HookPoint[InUseCheck] = HookPoint("weights.in_use_checks")


def weights_root(settings: Settings) -> Path:
    """The folder holding every weights' folder."""
    return settings.data_dir / "weights"


def work_dir(settings: Settings) -> Path:
    """Scratch space on the store's filesystem (copies in progress, trash)."""
    path = weights_root(settings) / ".work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_dir(settings: Settings, weights: Weights) -> Path:
    """The folder holding the weights' files."""
    return weights_root(settings) / str(weights.id)


def weights_file(settings: Settings, weights: Weights) -> Path:
    """The registered file (or SavedModel folder) in the store."""
    return weights_dir(settings, weights) / weights.file_name


# ---------------------------------------------------------------- access


def get_weights_for_user(
    db: Session, user: User, weights_id: int, need: Role = Role.READ
) -> Weights:
    """The weights if `user` holds `need` on them: public ones are readable by all and
    writable by none. Non-members get NotFound, too-low roles PermissionDenied."""
    weights = db.get(Weights, weights_id)
    if weights is None:
        raise NotFound("No such weights.")
    if weights.is_public and need == Role.READ:
        return weights
    try:
        require_project(db, user, weights.project_id, Role.READ if weights.is_public else need)
    except NotFound:
        if weights.is_public:
            raise PermissionDenied(f"Weights {weights.name!r} are public and read-only.") from None
        raise NotFound("No such weights.") from None
    if need > Role.READ and weights.is_public:
        raise PermissionDenied(f"Weights {weights.name!r} are public and read-only.")
    return weights


def download_target(
    db: Session, settings: Settings, *, user: User, weights_id: int
) -> tuple[Weights, Path]:
    """The weights (READ) and their file (or SavedModel folder) in the store."""
    weights = get_weights_for_user(db, user, weights_id)
    target = weights_file(settings, weights)
    if target.is_symlink() or not target.exists():
        raise NotFound(f"The file of weights {weights.name!r} is missing from the store.")
    return weights, target


def can_write(db: Session, user: User, weights: Weights) -> bool:
    """True when the user may change or delete the weights."""
    if weights.is_public:
        return user.is_admin
    role = role_of(db, user, weights.project_id)
    return user.is_admin or (role is not None and role >= Role.WRITE)


def list_weights(db: Session, user: User, *, project_id: int | None = None) -> list[Weights]:
    """The weights of the user's projects (or of one project) and the public ones, by name."""
    if project_id is not None:
        require_project(db, user, project_id, Role.READ)
        projects = [project_id]
    else:
        projects = visible_project_ids(db, user)
    query = select(Weights).where(or_(Weights.project_id.in_(projects), Weights.is_public))
    return list(db.scalars(query.order_by(func.lower(Weights.name), Weights.id)))


def find_weights_by_name(db: Session, user: User, name: str, project_id: int) -> Weights | None:
    """The weights called `name` the user can read: the project's own first, then public
    ones, then those of the user's other projects (the newest)."""
    own = db.scalar(select(Weights).where(Weights.project_id == project_id, Weights.name == name))
    if own is not None:
        return own
    visible = visible_project_ids(db, user)
    return db.scalar(
        select(Weights)
        .where(Weights.name == name, or_(Weights.is_public, Weights.project_id.in_(visible)))
        .order_by(Weights.is_public.desc(), Weights.id.desc())
        .limit(1)
    )


def lineage(db: Session, weights: Weights, limit: int = 20) -> list[Weights]:
    """The weights these were fine-tuned from, then those's parent, ... (oldest last)."""
    chain: list[Weights] = []
    seen = {weights.id}
    parent_id = weights.parent_id
    while parent_id is not None and parent_id not in seen and len(chain) < limit:
        parent = db.get(Weights, parent_id)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.id)
        parent_id = parent.parent_id
    return chain


# ---------------------------------------------------------------- register


def clean_weights_name(name: str) -> str:
    """Weights names become folder names inside jobs (/mlsteam/weights/<name>)."""
    try:
        return clean_dataset_name(name)
    except InvalidInput as exc:
        raise InvalidInput(exc.message.replace("Dataset", "Weights"), field="name") from None


def refuse_taken(db: Session, project_id: int, name: str, *, but: int | None = None) -> Conflict:
    taken = Conflict(f"Weights named {name!r} already exist in this project.", field="name")
    query = select(Weights.id).where(Weights.project_id == project_id, Weights.name == name)
    if but is not None:
        query = query.where(Weights.id != but)
    if db.scalar(query) is not None:
        raise taken
    return taken


# ---------------------------------------------------------------- change / delete


def update_weights(
    db: Session,
    settings: Settings,
    *,
    user: User,
    weights_id: int,
    name: str | None = None,
    description: str | None = None,
    public: bool | None = None,
) -> Weights:
    """Rename (unless in use), describe, or make public and read-only (one way: project
    owners and administrators). Public weights cannot be changed."""
    weights = get_weights_for_user(db, user, weights_id, Role.WRITE)
    if name is not None and name.strip() != weights.name:
        name = clean_weights_name(name)
        reason = in_use_reason(db, settings, weights)
        if reason:
            raise Conflict(f"Weights {weights.name!r} are in use ({reason}); keep their name.")
        taken = refuse_taken(db, weights.project_id, name, but=weights.id)
        save_unique(db, UNIQUE, taken, lambda: setattr(weights, "name", name))
    if description is not None:
        weights.description = description.strip()[:2000]
    if public:
        role = role_of(db, user, weights.project_id)
        if not user.is_admin and role != Role.OWN:
            raise PermissionDenied("Only the project's owners may make weights public.")
        clash = select(Weights.id).where(Weights.is_public, Weights.name == weights.name)
        if db.scalar(clash) is not None:
            raise Conflict(f"Public weights named {weights.name!r} already exist.", field="name")
        weights.is_public = True
    elif public is False:
        raise InvalidInput("Public weights stay public; register a copy instead.", field="public")
    db.flush()
    return weights


def jobs_using(db: Session, weights_id: int) -> str | None:
    """Why the weights cannot be deleted now (a queued or live job mounts them), or None."""
    rows = db.execute(
        select(Job.id, Job.datasets).where(Job.status.in_([JobStatus.QUEUED, *LIVE_STATUSES]))
    )
    for job_id, mounts in rows:
        if any(
            m.get("kind") == WEIGHTS_KIND and m.get("weights_id") == weights_id
            for m in mounts or []
        ):
            return f"job {job_id} uses them"
    return None


def in_use_reason(db: Session, settings: Settings, weights: Weights) -> str | None:
    """Why the weights cannot be deleted now: a queued or live job, or a lab, uses them."""
    reason = jobs_using(db, weights.id)
    if reason:
        return reason
    for check in IN_USE_CHECKS.handlers():
        reason = check(db, settings, weights)
        if reason:
            return reason
    return None


def delete_weights(db: Session, settings: Settings, *, user: User, weights_id: int) -> None:
    """Delete weights and their files (WRITE; public ones by administrators), unless in use."""
    weights = db.get(Weights, weights_id)
    if weights is None or not (weights.is_public and user.is_admin):
        weights = get_weights_for_user(db, user, weights_id, Role.WRITE)
    reason = in_use_reason(db, settings, weights)
    if reason:
        raise Conflict(f"Weights {weights.name!r} are in use: {reason}.")
    folder = weights_dir(settings, weights)
    db.delete(weights)
    db.flush()
    if folder.exists():
        trash = work_dir(settings) / f"trash-{uuid.uuid4().hex}"
        folder.rename(trash)
        with contextlib.suppress(OSError):  # the row is gone; leftover bytes are only trash
            remove_tree(trash)


def project_weights_folders(db: Session, settings: Settings, project_id: int) -> list[Path]:
    """The folders of the project's weights (wired into projects.delete_project)."""
    rows = db.scalars(select(Weights).where(Weights.project_id == project_id))
    return [weights_dir(settings, w) for w in rows]


# ---------------------------------------------------------------- fine-tuning


def mount_inputs(
    db: Session, settings: Settings, user: User, project_id: int, names: Sequence[str]
) -> list[DatasetInput]:
    """The weights named in a submission, as read-only mounts of its jobs
    (/mlsteam/weights/<name>); InvalidInput naming weights the user cannot read."""
    mounts = []
    for name in dict.fromkeys(n for n in names if n):
        weights = find_weights_by_name(db, user, name, project_id)
        if weights is None:
            raise InvalidInput(f"No weights named {name!r} that you can read.", field="weights")
        mounts.append(
            DatasetInput(
                name=weights.name,
                host_path=weights_dir(settings, weights),
                kind=WEIGHTS_KIND,
                weights_id=weights.id,
            )
        )
    return mounts
