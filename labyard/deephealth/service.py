"""DeepHealth's nouns as views of Labyard's: projects, users, datasets, models, weights and
properties. Every check is the owning domain's (projects, datasets, labs); this module only
translates shapes and DeepHealth's messages.

A DeepHealth project is a Labyard project; its task is the task of its newest DeepHealth lab
(`dh-classif` from the classification template, `dh-segment` from the segmentation one),
Classification when it has none. Permissions: OWN is OWN; VIEW is a Labyard WRITE member
(DeepHealth's viewers may train), and a READ member is shown as VIEW and stays READ.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from labyard.deephealth import fixtures, profiles
from labyard.deephealth.errors import DeepHealthError, invalid_pk, refused
from labyard.errors import InvalidInput, NotFound, PermissionDenied
from labyard.labs import files as lab_files
from labyard.labs import service as labs_service
from labyard.labs.models import Lab
from labyard.mlsteam import CONFIG_FILE
from labyard.paths import is_real_dir
from labyard.projects import service as projects_service
from labyard.projects.models import Membership, Project, Role

LAB_NAMES = {"classification": "dh-classif", "segmentation": "dh-segment"}
TASK_OF_LAB = {LAB_NAMES[template]: task for task, template in fixtures.TASK_TEMPLATES.items()}


# ---------------------------------------------------------------- users


def list_users(db: Session, user: User) -> list[dict[str, object]]:
    """The users the caller may name as project members: themselves and the members of their
    projects (admins: every active user)."""
    query = select(User).where(User.is_active.is_(True))
    if not user.is_admin:
        projects = projects_service.visible_project_ids(db, user)
        members = select(Membership.user_id).where(Membership.project_id.in_(projects))
        query = query.where((User.id == user.id) | User.id.in_(members))
    return profiles.users_json(db, list(db.scalars(query.order_by(User.id))))


def change_password(db: Session, user: User, *, old: str, new: str, again: str) -> None:
    """Change the caller's password (Labyard's rules; every token of theirs ends)."""
    if new != again:
        raise DeepHealthError(400, {"new_password2": ["The two password fields didn't match."]})
    try:
        auth_service.change_own_password(db, user, current_password=old, new_password=new)
    except InvalidInput as exc:
        if exc.field == "current_password":
            message = "Your old password was entered incorrectly. Please enter it again."
            raise DeepHealthError(400, {"old_password": [message]}) from None
        raise DeepHealthError(400, {"new_password2": [exc.message]}) from None


def check_users(users: object) -> dict[str, str]:
    """DeepHealth's `users` list as {username: "OWN" | "VIEW"}, with its messages."""
    if not isinstance(users, list) or not all(isinstance(u, dict) for u in users):
        raise refused("'users' must be a list of dictionaries")
    if not users:
        raise refused("'users' list cannot be empty")
    wanted: dict[str, str] = {}
    for item in users:
        if "permission" not in item:
            raise refused("'users' field must be always associated with its permission level")
        name, permission = item.get("username"), item.get("permission")
        if not isinstance(name, str) or permission not in ("OWN", "VIEW"):
            raise refused("Each 'users' item needs a username and the permission OWN or VIEW")
        wanted[name] = permission
    if "OWN" not in wanted.values():
        raise refused("At least one user in 'users' must be Owner")
    return wanted


def _require_users_exist(db: Session, names: list[str]) -> None:
    found = set(db.scalars(select(User.username).where(User.username.in_(names), User.is_active)))
    for name in names:
        if name not in found:
            raise refused(f"User `{name}` does not exist")


# ---------------------------------------------------------------- projects


def project_task(db: Session, user: User, project_id: int) -> int:
    """The project's DeepHealth task: its newest DeepHealth lab's, else Classification."""
    labs = labs_service.list_labs(db, user, project_id=project_id)
    ours = sorted((lab.id, TASK_OF_LAB[lab.name]) for lab in labs if lab.name in TASK_OF_LAB)
    return ours[-1][1] if ours else fixtures.CLASSIFICATION


def project_json(db: Session, user: User, project: Project) -> dict[str, object]:
    """A project as DeepHealth shows one."""
    return {
        "id": project.id,
        "name": project.name,
        "task_id": project_task(db, user, project.id),
        "users": project_json_users(project),
    }


def list_projects(db: Session, user: User) -> list[dict[str, object]]:
    """The caller's projects, by id."""
    rows = sorted(projects_service.list_projects(db, user), key=lambda pr: pr[0].id)
    return [project_json(db, user, project) for project, _role in rows]


def get_project(db: Session, user: User, project_id: int) -> dict[str, object]:
    """One of the caller's projects (else 404)."""
    return project_json(db, user, projects_service.require_project(db, user, project_id))


def _check_task(task_id: int) -> str:
    template = fixtures.TASK_TEMPLATES.get(task_id)
    if template is None:
        raise invalid_pk("task_id", task_id)
    return template


def find_lab(db: Session, user: User, project_id: int, template: str) -> Lab | None:
    """The project's DeepHealth lab of `template`, if it has one."""
    name = LAB_NAMES[template]
    for lab in labs_service.list_labs(db, user, project_id=project_id):
        if lab.name == name:
            if lab.template != template:
                raise refused(f"The project's lab {name!r} is not made from {template!r}.")
            return lab
    return None


def ensure_lab(db: Session, settings: Settings, user: User, project_id: int, template: str) -> Lab:
    """The project's DeepHealth lab of `template`, made from the template when missing."""
    found = find_lab(db, user, project_id, template)
    if found is not None:
        return found
    name = LAB_NAMES[template]
    lab = labs_service.create_lab(
        db, settings, user, project_id=project_id, name=name, template=template
    )
    text = lab_files.read_text(settings, lab, CONFIG_FILE)
    wanted = fixtures.lab_config_text(template, text)
    if wanted != text:  # a `weights` param: /train may start from registered weights
        lab_files.write_text(settings, lab, CONFIG_FILE, wanted)
    return lab


def create_project(
    db: Session, settings: Settings, user: User, *, name: str, task_id: int, users: object
) -> dict[str, object]:
    """A new project owned by the caller, with `users` as members and the task's lab."""
    template = _check_task(task_id)
    wanted = check_users(users)
    _require_users_exist(db, list(wanted))
    project = projects_service.create_project(db, owner=user, name=name)
    _set_members(db, user, project.id, wanted)
    ensure_lab(db, settings, user, project.id, template)
    db.refresh(project)
    return project_json(db, user, project)


def update_project(
    db: Session,
    settings: Settings,
    user: User,
    project_id: int,
    *,
    name: str,
    task_id: int,
    users: object,
) -> dict[str, object]:
    """Rename, set the task (its lab) and replace the members (OWN)."""
    try:
        projects_service.require_project(db, user, project_id, Role.OWN)
    except PermissionDenied:
        message = f"User `{user.username}` does not have owner permission on this Project"
        raise refused(message, 403) from None
    template = _check_task(task_id)
    wanted = check_users(users)
    _require_users_exist(db, list(wanted))
    project = projects_service.update_project(db, user, project_id, name=name, description=None)
    _set_members(db, user, project_id, wanted)
    ensure_lab(db, settings, user, project_id, template)
    db.refresh(project)
    return project_json(db, user, project)


def _set_members(db: Session, user: User, project_id: int, wanted: dict[str, str]) -> None:
    """Make the members exactly `wanted` (a VIEW member who is READ stays READ)."""
    current = {
        m.user.username: m
        for m in db.scalars(select(Membership).where(Membership.project_id == project_id))
    }
    for username, permission in wanted.items():
        row = current.get(username)
        role = Role.OWN if permission == "OWN" else Role.WRITE
        if row is not None and permission == "VIEW" and row.role < Role.OWN:
            continue  # READ and WRITE members both show as VIEW: keep what they have
        if row is None or row.role != role:
            projects_service.set_member(db, user, project_id, username=username, role=role)
    for username, row in current.items():
        if username not in wanted:
            projects_service.remove_member(db, user, project_id, member_id=row.user_id)


def delete_project(db: Session, settings: Settings, user: User, project_id: int) -> None:
    """Delete a project (OWN), as DeepHealth words a refusal."""
    try:
        project = projects_service.require_project(db, user, project_id, Role.OWN)
    except PermissionDenied:
        name = db.get(Project, project_id).name  # type: ignore[union-attr]
        raise refused(f"'{user.username}' has no permission to delete {name}", 403) from None
    projects_service.delete_project(db, user, project.id, settings=settings)


# ---------------------------------------------------------------- datasets


def dataset_task(settings: Settings, dataset: Dataset) -> int:
    """Segmentation when the dataset holds images/ + masks/ (per split or at the top),
    else Classification (the train/<class>/ folder format)."""
    root = datasets_service.dataset_dir(settings, dataset)
    for folder in (root / "train", root):
        if is_real_dir(folder / "masks"):
            return fixtures.SEGMENTATION
    return fixtures.CLASSIFICATION


def _classes(settings: Settings, dataset: Dataset) -> str | None:
    train = datasets_service.dataset_dir(settings, dataset) / "train"
    if not is_real_dir(train):
        return None
    names = sorted(p.name for p in train.iterdir() if is_real_dir(p))
    return ",".join(names) or None


def dataset_json(db: Session, settings: Settings, dataset: Dataset) -> dict[str, Any]:
    """A dataset as DeepHealth shows one; `path` is where a job finds it."""
    task = dataset_task(settings, dataset)
    users: list[dict[str, str]] = []
    if dataset.project_id is not None:
        project = db.get(Project, dataset.project_id)
        users = project_json_users(project) if project is not None else []
    return {
        "id": dataset.id,
        "name": dataset.name,
        "path": f"/mlsteam/input/{dataset.name}",
        "task_id": task,
        "users": users,
        "public": dataset.is_public,
        "ctype": "RGB",
        "ctype_gt": "GRAY" if task == fixtures.SEGMENTATION else None,
        "classes": _classes(settings, dataset) if task == fixtures.CLASSIFICATION else None,
    }


def project_json_users(project: Project) -> list[dict[str, str]]:
    """A project's members as a DeepHealth `users` list."""
    return [
        {"username": m.user.username, "permission": "OWN" if m.role == Role.OWN else "VIEW"}
        for m in sorted(project.memberships, key=lambda m: (-m.role, m.user_id))
    ]


def list_datasets(
    db: Session, settings: Settings, user: User, *, task_id: int | None
) -> list[dict[str, Any]]:
    """Public datasets, then the caller's projects' ones, each group by id."""
    found = datasets_service.list_datasets(db, user)
    rows = [
        dataset_json(db, settings, d) for d in sorted(found, key=lambda d: (not d.is_public, d.id))
    ]
    return [r for r in rows if task_id is None or r["task_id"] == task_id]


def get_dataset(db: Session, settings: Settings, user: User, dataset_id: int) -> dict[str, Any]:
    """One dataset the caller can read (else 404)."""
    dataset = datasets_service.get_dataset_for_user(db, user, dataset_id)
    return dataset_json(db, settings, dataset)


def delete_dataset(db: Session, settings: Settings, user: User, dataset_id: int) -> None:
    """Delete a dataset (as its project's rules say), as DeepHealth words a refusal."""
    dataset = datasets_service.get_dataset_for_user(db, user, dataset_id)
    try:
        datasets_service.delete_dataset(db, settings, user=user, dataset_id=dataset.id)
    except PermissionDenied:
        message = f"'{user.username}' has no permission to delete {dataset.name}"
        raise refused(message, 403) from None


def fixture_dataset_ids(db: Session) -> dict[int, int]:
    """DeepHealth's fixture dataset ids -> the ids of the public datasets standing in."""
    names = fixtures.FIXTURE_DATASETS
    rows = db.execute(
        select(Dataset.name, Dataset.id).where(
            Dataset.is_public.is_(True), Dataset.name.in_(names.values())
        )
    )
    by_name = {name: dataset_id for name, dataset_id in rows}
    return {fid: by_name[name] for fid, name in names.items() if name in by_name}


# ---------------------------------------------------------------- models and properties


def list_models(task_id: int | None) -> list[dict[str, object]]:
    """The models (the templates' networks), by id, of one task or all."""
    return [m.json() for m in fixtures.models() if task_id is None or m.task_id == task_id]


def list_properties(name: str | None) -> list[dict[str, object]]:
    """The properties, or those whose name contains `name` (as DeepHealth matches it)."""
    if not name:
        return list(fixtures.PROPERTIES)
    wanted = name.lower()
    return [
        p
        for p in fixtures.PROPERTIES
        if wanted in str(p["name"]).lower() or wanted.replace("_", " ") in str(p["name"]).lower()
    ]


def get_property(property_id: int) -> dict[str, object]:
    """One property (else 404)."""
    prop = fixtures.get_property(property_id)
    if prop is None:
        raise NotFound("No such property.")
    return prop


def allowed_properties(
    db: Session, *, model_id: int, property_id: int, dataset_id: int | None
) -> list[dict[str, object]]:
    """The row for (model, property, dataset) exactly: no fallback to the model's row."""
    stand_ins = fixture_dataset_ids(db)
    out = []
    for row in fixtures.ALLOWED_PROPERTIES:
        if row.model_id != model_id or row.property_id != property_id:
            continue
        row_dataset = stand_ins.get(row.fixture_dataset) if row.fixture_dataset else None
        if row.fixture_dataset is not None and row_dataset is None:
            continue  # DeepHealth's dataset has no stand-in here
        if row_dataset == dataset_id:
            out.append(row.json(row_dataset))
    return out


def read_only(what: str) -> DeepHealthError:
    """The refusal of a write to one of the fixed tables."""
    return refused(f"{what} are fixed in Labyard: {fixtures.WHY_FIXED}", 403)
