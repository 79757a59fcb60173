"""DeepHealth's weights: the weights registry (labyard.weights) as DeepHealth shows weights,
plus one public "from scratch" row per model so that every model can be trained.

Registered weights keep their Labyard id; a from-scratch row's id is SCRATCH_BASE + the
model's id. A registered row's model is its source job's network (its `network` param) in
the template of its task; weights whose network is not a model here are listed under none.
Every check (who may read, delete or download) is the weights service's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.deephealth import fixtures
from labyard.deephealth.errors import refused
from labyard.errors import NotFound, PermissionDenied
from labyard.jobs.models import Job
from labyard.projects.models import Project, Role
from labyard.weights import service as weights_service
from labyard.weights.models import Weights

SCRATCH_BASE = 1_000_000
TASK_IDS = {template: task for task, template in fixtures.TASK_TEMPLATES.items()}


@dataclass(frozen=True)
class Weight:
    """A weights row as /train uses it: a registered one (`registered`) or from scratch."""

    id: int
    name: str
    model_id: int | None
    dataset_id: int | None
    public: bool
    users: tuple[tuple[str, str], ...] = ()
    pretrained_on: int | None = None
    classes: str | None = None
    registered: Weights | None = None

    def json(self) -> dict[str, object]:
        """As DeepHealth lists weights."""
        return {
            "id": self.id,
            "name": self.name,
            "model_id": self.model_id,
            "dataset_id": self.dataset_id,
            "pretrained_on": self.pretrained_on,
            "public": self.public,
            "users": [{"username": u, "permission": p} for u, p in self.users],
            "process_id": None,
            "layer_to_remove": "final_layer",  # the head is replaced for another class count
            "is_active": True,
            "classes": self.classes,
        }


def scratch_weights() -> list[Weight]:
    """One public from-scratch row per model (fine-tunable on any dataset)."""
    return [
        Weight(SCRATCH_BASE + m.id, f"{m.name}_from_scratch", m.id, None, True)
        for m in fixtures.models()
    ]


def model_of(db: Session, weights: Weights) -> fixtures.Model | None:
    """The model registered weights are a training of: their source job's network."""
    job = db.get(Job, weights.source_job_id) if weights.source_job_id is not None else None
    network = (job.params or {}).get("network") if job is not None else None
    task = TASK_IDS.get(weights.task)
    return next(
        (m for m in fixtures.models() if m.network == network and task in (None, m.task_id)),
        None,
    )


def _registered(db: Session, weights: Weights) -> Weight:
    model = model_of(db, weights)
    users: tuple[tuple[str, str], ...] = ()
    if not weights.is_public:
        project = db.get(Project, weights.project_id)
        members = project.memberships if project is not None else []
        users = tuple((m.user.username, "OWN" if m.role >= Role.WRITE else "VIEW") for m in members)
    return Weight(
        id=weights.id,
        name=weights.name,
        model_id=model.id if model else None,
        dataset_id=weights.datasets[0].get("id") if weights.datasets else None,
        public=weights.is_public,
        users=users,
        pretrained_on=weights.parent_id,
        classes=",".join(weights.classes) or None,
        registered=weights,
    )


def list_weights(
    db: Session, user: User, *, model_id: int, dataset_id: int | None
) -> list[dict[str, object]]:
    """The model's weights the caller can read: from scratch, then registered ones by id.
    Every row can start a training on any dataset of its task (DeepHealth's filter by
    `dataset_id` keeps weights with a removable head, i.e. all)."""
    found = [w for w in scratch_weights() if w.model_id == model_id]
    rows = sorted(weights_service.list_weights(db, user), key=lambda w: w.id)
    found += [w for w in (_registered(db, r) for r in rows) if w.model_id == model_id]
    return [w.json() for w in found]


def get_weight(db: Session, user: User, weight_id: int) -> Weight | None:
    """The weights row with this id the caller can read, or None."""
    if weight_id > SCRATCH_BASE:
        return next((w for w in scratch_weights() if w.id == weight_id), None)
    try:
        return _registered(db, weights_service.get_weights_for_user(db, user, weight_id))
    except NotFound:
        return None


def delete_weight(db: Session, settings: Settings, user: User, weight_id: int) -> None:
    """Delete registered weights (as the weights service allows), in DeepHealth's words."""
    found = get_weight(db, user, weight_id)
    if found is None:
        raise NotFound("No such weights.")
    if found.registered is None:
        raise refused(f"'{user.username}' has no permission to delete {found.name}", 403)
    try:
        weights_service.delete_weights(db, settings, user=user, weights_id=found.id)
    except PermissionDenied:
        raise refused(f"'{user.username}' has no permission to delete {found.name}", 403) from None


def download(db: Session, settings: Settings, user: User, weight_id: int) -> tuple[str, Path]:
    """The file name and path of registered ONNX weights the caller can read."""
    found = get_weight(db, user, weight_id)
    if found is None or found.registered is None:
        raise NotFound("No such weights file.")
    weights, target = weights_service.download_target(db, settings, user=user, weights_id=found.id)
    if weights.format != "onnx" or not target.is_file():
        raise refused(f"Weights {weights.name!r} are {weights.format}, not an ONNX file.")
    return f"{weights.name}.onnx", target
