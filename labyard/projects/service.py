"""Projects and members, and `require_project`, the permission check every domain uses."""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.db.unique import saved_unless_taken
from labyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labyard.hooks import HookPoint
from labyard.paths import is_inside
from labyard.projects.models import PRIORITIES, Membership, Project, Role

if TYPE_CHECKING:
    from labyard.config import Settings

MAX_NAME = 100
OwnedT = TypeVar("OwnedT", bound="ProjectOwned")


def clean_display_name(value: str, *, field: str = "name", max_length: int = MAX_NAME) -> str:
    """Strip a user-given display name and refuse empty, overlong or control-character names."""
    value = value.strip()
    if not value:
        raise InvalidInput("Name must not be empty.", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"Name must be at most {max_length} characters.", field=field)
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise InvalidInput("Name must not contain control or formatting characters.", field=field)
    return value


def create_project(db: Session, *, owner: User, name: str, description: str = "") -> Project:
    """Create a project owned by `owner`."""
    project = Project(
        name=clean_display_name(name),
        description=description.strip()[:2000],
        created_by_id=owner.id,
    )
    project.memberships.append(Membership(user_id=owner.id, role=Role.OWN))
    db.add(project)
    db.flush()
    return project


def role_of(db: Session, user: User, project_id: int) -> Role | None:
    """The user's role in the project (admins own everything), or None for a non-member."""
    if user.is_admin:
        return Role.OWN
    return db.scalar(
        select(Membership.role).where(
            Membership.project_id == project_id, Membership.user_id == user.id
        )
    )


def require_project(db: Session, user: User, project_id: int, need: Role = Role.READ) -> Project:
    """The project if `user` holds at least `need` in it.

    Non-members get NotFound (no existence leak); members with too low a role get
    PermissionDenied. Every domain checks access to project-owned things through this.
    """
    project = db.get(Project, project_id)
    role = role_of(db, user, project_id) if project is not None else None
    if project is None or role is None:
        raise NotFound("No such project.")
    if role < need:
        raise PermissionDenied(f"This needs {need.name} access to project {project.name!r}.")
    return project


class ProjectOwned(Protocol):
    """A row that belongs to a project (a lab, a job, a sweep, a TensorBoard...)."""

    @property
    def project_id(self) -> int: ...


def require_owned(
    db: Session, user: User, model: type[OwnedT], row_id: int, need: Role = Role.READ, *, noun: str
) -> OwnedT:
    """The `model` row `row_id` if `user` holds `need` in its project.

    A missing row and a non-member get the same NotFound ("No such <noun>."), so nothing leaks;
    a member with too low a role gets PermissionDenied.
    """
    row = db.get(model, row_id)
    if row is None:
        raise NotFound(f"No such {noun}.")
    try:
        require_project(db, user, row.project_id, need)
    except NotFound:
        raise NotFound(f"No such {noun}.") from None
    return row


def visible_project_ids(db: Session, user: User) -> list[int]:
    """Ids of the projects the user can see."""
    if user.is_admin:
        return list(db.scalars(select(Project.id)))
    return list(db.scalars(select(Membership.project_id).where(Membership.user_id == user.id)))


def list_projects(db: Session, user: User) -> list[tuple[Project, Role]]:
    """The projects the user can see, with the user's role in each, by name."""
    if user.is_admin:
        return [(p, Role.OWN) for p in db.scalars(select(Project).order_by(Project.name))]
    rows = db.execute(
        select(Project, Membership.role)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == user.id)
        .order_by(Project.name)
    )
    return [(p, r) for p, r in rows]


def update_project(
    db: Session,
    user: User,
    project_id: int,
    *,
    name: str | None,
    description: str | None,
    default_priority: str | None = None,
) -> Project:
    """Rename a project or change its description (WRITE), or its jobs' default priority
    (low / normal / high: OWN)."""
    project = require_project(db, user, project_id, Role.WRITE)
    if default_priority is not None:
        require_project(db, user, project_id, Role.OWN)
        project.default_priority = PRIORITIES[default_priority]
    if name is not None:
        project.name = clean_display_name(name)
    if description is not None:
        project.description = description.strip()[:2000]
    return project


# Domains that keep files for a project's rows say where (datasets, labs, jobs, tensorboard),
# and why the project cannot go right now (a queued or running job). labyard.app.wire_hooks
# connects them; delete_project refuses to run unwired rather than skip a check.
FolderFinder = Callable[[Session, "Settings", int], list[Path]]
DeleteBlocker = Callable[[Session, int], str | None]
PROJECT_FOLDERS: HookPoint[FolderFinder] = HookPoint("projects.folders")
DELETE_BLOCKERS: HookPoint[DeleteBlocker] = HookPoint("projects.delete_blockers")


def give_default_project(db: Session, user: User) -> None:
    """A new user's default project, which they own (wired to auth's USER_CREATED)."""
    project = create_project(db, owner=user, name=f"{user.username}-default")
    user.default_project_id = project.id


def delete_project(db: Session, user: User, project_id: int, *, settings: Settings) -> None:
    """Delete a project, its rows and their files (OWN); a user's default project stays,
    and so does a project with queued or running jobs."""
    project = require_project(db, user, project_id, Role.OWN)
    if db.scalar(select(User.id).where(User.default_project_id == project.id)) is not None:
        raise Conflict("A user's default project cannot be deleted.")
    for blocker in DELETE_BLOCKERS.handlers():
        reason = blocker(db, project.id)
        if reason:
            raise Conflict(f"Project {project.name!r} cannot be deleted now: {reason}")
    folders = [f for find in PROJECT_FOLDERS.handlers() for f in find(db, settings, project.id)]
    db.delete(project)
    db.flush()
    for folder in folders:
        remove_tree(folder)


def remove_tree(folder: Path) -> None:
    """Remove a folder even where it was made read-only (public or snapshot files). Links
    inside are removed, never followed; a retry whose path now leads out of the folder (a
    job swapped a folder for a link meanwhile) re-raises instead of touching it."""
    real_root = folder.resolve()

    def make_writable_and_retry(func: Callable[[str], object], path: str, exc: object) -> None:
        parent = Path(os.path.dirname(path)).resolve()
        if not is_inside(parent, real_root):
            error = exc[1] if isinstance(exc, tuple) else exc  # onerror gives exc_info
            raise error if isinstance(error, BaseException) else OSError("left the folder")
        os.chmod(parent, 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        func(path)

    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        if sys.version_info >= (3, 12):
            shutil.rmtree(folder, onexc=make_writable_and_retry)
        else:
            shutil.rmtree(folder, onerror=make_writable_and_retry)


def list_members(db: Session, user: User, project_id: int) -> list[Membership]:
    """The project's members (READ)."""
    require_project(db, user, project_id)
    return list(
        db.scalars(
            select(Membership)
            .where(Membership.project_id == project_id)
            .join(Membership.user)
            .order_by(User.username)
        )
    )


def set_member(
    db: Session, user: User, project_id: int, *, username: str, role: Role
) -> Membership:
    """Add a member or change their role (OWN)."""
    require_project(db, user, project_id, Role.OWN)
    member = db.scalar(select(User).where(User.username == username, User.is_active.is_(True)))
    if member is None:
        raise InvalidInput(f"No active user {username!r}.", field="username")
    found = select(Membership).where(
        Membership.project_id == project_id, Membership.user_id == member.id
    )
    row = db.scalar(found)
    if row is None:
        new = Membership(project_id=project_id, user_id=member.id, role=role)
        if saved_unless_taken(db, "uq_memberships_project_id", lambda: db.add(new)):
            return new
        row = db.scalar(found)  # a concurrent request added them: change their role instead
        if row is None:  # ...and another one removed them again
            raise Conflict("The membership changed at the same time; try again.")
    if row.role == Role.OWN and role != Role.OWN:
        _keep_an_owner(db, project_id)
    row.role = role
    db.flush()
    return row


def remove_member(db: Session, user: User, project_id: int, *, member_id: int) -> None:
    """Remove a member (OWN); the last owner cannot be removed."""
    require_project(db, user, project_id, Role.OWN)
    row = db.scalar(
        select(Membership).where(
            Membership.project_id == project_id, Membership.user_id == member_id
        )
    )
    if row is None:
        raise NotFound("No such member.")
    if row.role == Role.OWN:
        _keep_an_owner(db, project_id)
    db.delete(row)


def _keep_an_owner(db: Session, project_id: int) -> None:
    owners = db.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.project_id == project_id, Membership.role == Role.OWN)
    )
    if (owners or 0) <= 1:
        raise Conflict("A project must keep at least one owner.")
