"""Labs: create (blank or from a template), list, get, update, delete; dataset attachments.

A lab's files live in `lab_dir(settings, lab_id)`; the row and the folder are created and
removed by the same service call. Access goes through the lab's project (`require_project`).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from labyard.db.unique import save_unique, saved_unless_taken
from labyard.errors import Conflict, InvalidInput, NotFound
from labyard.flavors.models import Flavor
from labyard.flavors.service import get_flavor_by_name, list_flavors
from labyard.hooks import HookPoint
from labyard.jobs.inventory import Inventory, node_inventory
from labyard.jobs.models import Job
from labyard.jobs.service import check_fits
from labyard.jobs.views import LabRef
from labyard.labs.models import Lab, LabDataset
from labyard.mlsteam import CONFIG_FILE
from labyard.projects.models import Role
from labyard.projects.service import (
    require_owned,
    require_project,
    visible_project_ids,
)
from labyard.templates_catalog import LabTemplate, copy_template, get_template

LAB_NAME_MAX = 11
LAB_NAME_RE = re.compile(rf"^[A-Za-z0-9_-]{{1,{LAB_NAME_MAX}}}$")
LAB_NAME_RULE = f"Lab names are 1 to {LAB_NAME_MAX} characters: letters, digits, '-' and '_'."
INPUT_ROOT = "/mlsteam/input"
BLANK_MLSTEAM = """\
# The lab's run configuration (MLSteam's format): the command and its parameters.
command: python main.py
params: {}
"""
BLANK_MAIN = 'print("Hello from a blank lab")\n'
# Why a lab cannot be deleted now, answered by a higher domain (its session runs), or None.
DELETE_BLOCKERS: HookPoint[Callable[[Session, int], str | None]] = HookPoint("labs.delete_blockers")
# What a change of the lab's datasets means for work already running there (its session keeps
# the datasets it started with), answered by a higher domain, or None.
DATASET_CHANGE_NOTES: HookPoint[Callable[[Session, int], str | None]] = HookPoint(
    "labs.dataset_change_notes"
)


@dataclass(frozen=True)
class Mount:
    """A dataset attached to a lab: where it comes from and where jobs see it."""

    dataset: Dataset
    host_path: Path
    mount_path: str


def labs_root(settings: Settings) -> Path:
    """The folder holding every lab's folder."""
    return settings.data_dir / "labs"


def lab_dir(settings: Settings, lab_id: int) -> Path:
    """The folder of one lab's code and mlsteam.yml."""
    return labs_root(settings) / str(lab_id)


def clean_lab_name(name: str) -> str:
    """The lab name if it follows LAB_NAME_RULE exactly, else InvalidInput saying the rule."""
    if not LAB_NAME_RE.fullmatch(name):
        raise InvalidInput(LAB_NAME_RULE, field="name")
    return name


def _require_flavor(db: Session, name: str) -> str:
    if db.scalar(select(Flavor.id).where(Flavor.name == name)) is None:
        raise InvalidInput(f"No flavor {name!r}.", field="flavor")
    return name


@dataclass(frozen=True)
class FlavorChoice:
    """A flavor as the pickers offer it: `why_not` says why it can never run here (the
    scheduler's and submission's rule, `Inventory.why_never_fits`), None when it can."""

    flavor: Flavor
    why_not: str | None

    @property
    def summary(self) -> str:
        """Its sizes, e.g. "1 GPU · 4 CPU · 16384 MiB"."""
        f = self.flavor
        return f"{f.gpus} GPU · {f.cpus:g} CPU · {f.memory_mb} MiB"


def flavor_choices(
    db: Session, settings: Settings, inventory: Inventory | None = None
) -> list[FlavorChoice]:
    """Every flavor, smallest first, each with why it can never fit this installation."""
    inv = inventory or node_inventory(settings)
    return [
        FlavorChoice(f, inv.why_never_fits(gpus=f.gpus, cpus=f.cpus, memory_mb=f.memory_mb))
        for f in list_flavors(db)
    ]


# ---------------------------------------------------------------- access


def get_lab(db: Session, user: User, lab_id: int, need: Role = Role.READ) -> Lab:
    """The lab if the user holds `need` in its project; NotFound for non-members."""
    return require_owned(db, user, Lab, lab_id, need, noun="lab")


def lab_for_file_work(db: Session, user: User, lab_id: int) -> Lab:
    """The lab for a change to its files (WRITE), with the request's transaction ended:
    the slow part that follows (parsing an mlsteam.yml, copying an upload) holds no
    database lock, so it cannot stall other writers. It writes no rows."""
    lab = get_lab(db, user, lab_id, Role.WRITE)
    db.commit()  # ends BEGIN IMMEDIATE (SQLite's write lock); expire_on_commit is off
    return lab


def list_labs(db: Session, user: User, *, project_id: int | None = None) -> list[Lab]:
    """The labs of one project (READ) or of every project the user sees, by name."""
    if project_id is not None:
        require_project(db, user, project_id, Role.READ)
        projects = [project_id]
    else:
        projects = visible_project_ids(db, user)
    query = select(Lab).where(Lab.project_id.in_(projects)).order_by(Lab.name, Lab.id)
    return list(db.scalars(query))


def job_counts(db: Session, lab_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per lab: the number of its jobs in each status (jobs rows carry a `lab_id`)."""
    counts: dict[int, dict[str, int]] = {lab_id: {} for lab_id in lab_ids}
    if not lab_ids:
        return counts
    rows = db.execute(
        select(Job.lab_id, Job.status, func.count())
        .where(Job.lab_id.in_(lab_ids))
        .group_by(Job.lab_id, Job.status)
    )
    for lab_id, status, count in rows:
        if lab_id is not None:
            counts[lab_id][str(status)] = count
    return counts


# ---------------------------------------------------------------- create, update, delete


def create_lab(
    db: Session,
    settings: Settings,
    user: User,
    *,
    project_id: int,
    name: str,
    template: str | None = None,
    flavor: str | None = None,
    description: str = "",
) -> Lab:
    """Create a lab (WRITE): blank, or with a template's files and default datasets."""
    require_project(db, user, project_id, Role.WRITE)
    name = clean_lab_name(name)
    source = get_template(template) if template else None
    if flavor:  # a flavor chosen in the picker: refused when it can never run here
        check_fits(node_inventory(settings), get_flavor_by_name(db, _require_flavor(db, flavor)))
    flavor = _require_flavor(db, flavor or (source.default_flavor if source else "cpu"))
    taken = Conflict(f"This project already has a lab named {name!r}.", field="name")
    if db.scalar(select(Lab.id).where(Lab.project_id == project_id, Lab.name == name)):
        raise taken
    lab = Lab(
        project_id=project_id,
        name=name,
        template=source.name if source else None,
        flavor=flavor,
        description=description.strip()[:2000],
        created_by_id=user.id,
    )
    save_unique(db, "uq_labs_project_id", taken, lambda: db.add(lab))
    if source is not None:
        for dataset_name in source.default_datasets:
            found = datasets_service.find_dataset_by_name(db, user, dataset_name, project_id)
            if found is not None:
                lab.attachments.append(LabDataset(dataset_id=found.id, dataset=found))
        db.flush()
    _make_folder(settings, lab.id, source)
    return lab


def _make_folder(settings: Settings, lab_id: int, source: LabTemplate | None) -> None:
    """Fill the lab's folder: a copy of the template, or a starter mlsteam.yml and script."""
    folder = lab_dir(settings, lab_id)
    if folder.exists():  # left over by a lab whose row was never committed
        _remove_tree(settings, folder)
    labs_root(settings).mkdir(parents=True, exist_ok=True)
    if source is None:
        folder.mkdir()
        (folder / CONFIG_FILE).write_text(BLANK_MLSTEAM)
        (folder / "main.py").write_text(BLANK_MAIN)
        return
    copy_template(source, folder)
    for dirpath, dirnames, _ in os.walk(folder):
        for name in dirnames:
            (Path(dirpath) / name).chmod(0o700)
    folder.chmod(0o700)


def _remove_tree(settings: Settings, folder: Path) -> None:
    """Move `folder` aside, then delete it (a half-deleted lab is never seen)."""
    trash = labs_root(settings) / f".trash-{uuid.uuid4().hex}"
    folder.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def update_lab(
    db: Session,
    user: User,
    lab_id: int,
    *,
    flavor: str | None = None,
    description: str | None = None,
) -> Lab:
    """Change a lab's default flavor or description (WRITE)."""
    lab = get_lab(db, user, lab_id, Role.WRITE)
    if flavor is not None:
        lab.flavor = _require_flavor(db, flavor)
    if description is not None:
        lab.description = description.strip()[:2000]
    return lab


def delete_lab(db: Session, settings: Settings, user: User, lab_id: int) -> None:
    """Delete a lab and its files (WRITE); its jobs' records and outputs stay."""
    lab = get_lab(db, user, lab_id, Role.WRITE)
    for blocker in DELETE_BLOCKERS.handlers():
        if why := blocker(db, lab.id):
            raise Conflict(f"Lab {lab.name} cannot be deleted: {why}.")
    db.delete(lab)
    db.flush()
    folder = lab_dir(settings, lab_id)
    if folder.exists():
        _remove_tree(settings, folder)


# ---------------------------------------------------------------- datasets


def mounts(settings: Settings, lab: Lab) -> list[Mount]:
    """The lab's attached datasets with their host folders and mount points, by name."""
    rows = sorted(lab.attachments, key=lambda a: a.dataset.name)
    return [
        Mount(
            dataset=a.dataset,
            host_path=datasets_service.dataset_dir(settings, a.dataset),
            mount_path=f"{INPUT_ROOT}/{a.dataset.name}",
        )
        for a in rows
    ]


def _attachable(db: Session, user: User, lab: Lab, dataset_id: int) -> Dataset:
    """The dataset if it is the lab's project's own or public; NotFound otherwise (no leak)."""
    dataset = datasets_service.get_dataset_for_user(db, user, dataset_id, Role.READ)
    if not (dataset.is_public or dataset.project_id == lab.project_id):
        raise NotFound("No such dataset.")
    return dataset


def attach_dataset(db: Session, user: User, lab_id: int, *, dataset_id: int) -> Lab:
    """Attach a dataset (WRITE on the lab); attaching one already attached changes nothing."""
    lab = get_lab(db, user, lab_id, Role.WRITE)
    dataset = _attachable(db, user, lab, dataset_id)
    if any(a.dataset_id == dataset.id for a in lab.attachments):
        return lab
    if any(a.dataset.name == dataset.name for a in lab.attachments):
        raise Conflict(
            f"A dataset named {dataset.name!r} is already mounted at {INPUT_ROOT}/{dataset.name}."
        )
    row = LabDataset(lab_id=lab.id, dataset_id=dataset.id)
    saved_unless_taken(db, "uq_lab_datasets_lab_id", lambda: db.add(row))  # else attached since
    db.expire(lab, ["attachments"])
    return lab


def attach_dataset_by_name(db: Session, user: User, lab_id: int, *, name: str) -> Lab:
    """Attach the dataset called `name`: the lab's project's own first, then a public one."""
    lab = get_lab(db, user, lab_id, Role.WRITE)
    found = datasets_service.find_dataset_by_name(db, user, name.strip(), lab.project_id)
    if found is None:
        raise NotFound(
            f"No dataset named {name.strip()!r} in this project or public.", field="name"
        )
    return attach_dataset(db, user, lab_id, dataset_id=found.id)


def detach_dataset(db: Session, user: User, lab_id: int, *, dataset_id: int) -> Lab:
    """Detach a dataset (WRITE on the lab); NotFound when it is not attached."""
    lab = get_lab(db, user, lab_id, Role.WRITE)
    row = next((a for a in lab.attachments if a.dataset_id == dataset_id), None)
    if row is None:
        raise NotFound("That dataset is not attached to this lab.")
    lab.attachments.remove(row)
    db.flush()
    return lab


def dataset_change_note(db: Session, lab_id: int) -> str:
    """What the page and the API say after the lab's datasets changed ('' when nothing runs
    there): a live session keeps its mounts until its next start."""
    notes = (note(db, lab_id) for note in DATASET_CHANGE_NOTES.handlers())
    return " ".join(n for n in notes if n)


def dataset_suggestions(db: Session, user: User, lab_id: int, *, prefix: str) -> list[Dataset]:
    """Datasets the lab could attach whose name starts with `prefix` (at most 10)."""
    lab = get_lab(db, user, lab_id, Role.READ)
    attached = {a.dataset_id for a in lab.attachments}
    prefix = prefix.strip().lower()
    candidates = datasets_service.list_datasets(db, user, project_id=lab.project_id)
    return [
        d
        for d in candidates
        if d.id not in attached
        and d.name.lower().startswith(prefix)
        and (d.is_public or d.project_id == lab.project_id)
    ][:10]


def project_lab_folders(db: Session, settings: Settings, project_id: int) -> list[Path]:
    """The folders of the project's labs (wired into projects.delete_project)."""
    ids = db.scalars(select(Lab.id).where(Lab.project_id == project_id))
    return [lab_dir(settings, lab_id) for lab_id in ids]


def lab_refs(db: Session, project_ids: Sequence[int], lab_id: int | None = None) -> list[LabRef]:
    """The labs of these projects (only `lab_id` when given) as the jobs pages show them."""
    query = select(Lab).where(Lab.project_id.in_(project_ids)).order_by(Lab.name, Lab.id)
    if lab_id is not None:
        query = query.where(Lab.id == lab_id)
    return [LabRef(lab.id, lab.name, lab.project.name) for lab in db.scalars(query)]
