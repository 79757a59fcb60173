"""DeepHealth's processes as Labyard jobs: /train submits the project's DeepHealth lab (made
from the model's template) as an ordinary job; /status, /stopProcess, /output, /trainings
and /trainingSettings read and stop that job through the jobs service.

A process id is the job's id in a UUID's form (`00000000-0000-4000-8000-<id in hex>`), so
nothing is stored beside the job. Progress is reported in DeepHealth's words from the job's
own lines: `Progress epoch=3/10 step=120/773` after `Train ... loss=0.2 acc=0.9` reads as
`Train - epoch [3/10] - batch [120/773] - loss=0.200 - metric=0.900`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from labyard.deephealth import fixtures, inference, service, weights
from labyard.deephealth.errors import DeepHealthError, invalid_pk, refused
from labyard.deephealth.schemas import (
    InferenceBody,
    PropertyValue,
    SingleInferenceBody,
    TrainBody,
)
from labyard.errors import Conflict, InvalidInput, NotFound
from labyard.jobs import artifacts
from labyard.jobs import service as jobs_service
from labyard.jobs.grid import check_selection
from labyard.jobs.logs import split_stamp
from labyard.jobs.metrics import parse_metric_line
from labyard.jobs.models import Job, JobStatus
from labyard.labs import service as labs_service
from labyard.labs.submit import submit_lab
from labyard.projects import service as projects_service
from labyard.projects.models import Role
from labyard.weights import service as weights_service

_PREFIX = "00000000-0000-4000-8000-"
STATES = {
    JobStatus.QUEUED: "PENDING",
    JobStatus.STARTING: "STARTED",
    JobStatus.RUNNING: "STARTED",
    JobStatus.SUCCEEDED: "SUCCESS",
    JobStatus.FAILED: "FAILURE",
    JobStatus.STOPPED: "REVOKED",
    JobStatus.PRUNED: "REVOKED",
}
# DeepHealth property -> (template param, type); Input width follows Input height (one size).
PARAMS: dict[str, tuple[str, type]] = {
    "Learning rate": ("lr", float),
    "Epochs": ("num_epoch", int),
    "Batch size": ("batch_size", int),
    "Input height": ("image_size", int),
}
WEIGHTS_PARAM = "weights"  # a template's param of `type: weights` (labyard.weights)
SEGMENTATION_LOSSES = {"cross_entropy": "ce", "softmax_cross_entropy": "ce", "dice": "dice"}
STATUS_LINES = 400  # log lines read for the newest status line
FULL_LINES = 100_000


def process_id(job_id: int) -> str:
    """The DeepHealth process id of a job."""
    return f"{_PREFIX}{job_id:012x}"


def _job_id(value: str) -> int | None:
    """The job id in a process id; 400 when it is no UUID, None when it is not one of ours."""
    try:
        text = str(uuid.UUID(value))
    except ValueError:
        raise DeepHealthError(400, {"process_id": ["Must be a valid UUID."]}) from None
    return int(text[len(_PREFIX) :], 16) if text.startswith(_PREFIX) else None


def _stamp(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment is not None else None


def find_job(db: Session, user: User, value: str, missing: dict[str, object]) -> Job:
    """The caller's job behind a process id, else 404 with DeepHealth's `missing` body."""
    job_id = _job_id(value)
    try:
        if job_id is None:
            raise NotFound("No such job.")
        return jobs_service.get_job(db, user, job_id)
    except NotFound:
        raise DeepHealthError(404, missing) from None


# ---------------------------------------------------------------- train


def resolve_properties(
    db: Session, model: fixtures.Model, dataset: Dataset, items: list[PropertyValue]
) -> dict[str, str]:
    """Every property's value as DeepHealth resolves it: the model's rows, the model and
    dataset's rows, the property defaults, then the caller's non-empty items."""
    stand_ins = service.fixture_dataset_ids(db)
    values: dict[str, str] = {}
    rows = [r for r in fixtures.ALLOWED_PROPERTIES if r.model_id == model.id]
    for row in sorted(rows, key=lambda r: r.fixture_dataset is not None):
        if row.fixture_dataset is None or stand_ins.get(row.fixture_dataset) == dataset.id:
            values[fixtures.PROPERTY_NAMES[row.property_id]] = row.default_value
    for prop in fixtures.PROPERTIES:
        values.setdefault(str(prop["name"]), str(prop["default"] or ""))
    for item in items:
        if item.value == "":
            continue
        found = fixtures.find_property(item.name)
        if found is None:
            raise refused(f"Property with name `{item.name}` does not exist")
        values[str(found["name"])] = item.value
    return values


def template_params(model: fixtures.Model, values: dict[str, str]) -> dict[str, list[Any]]:
    """The template params a job gets for the resolved properties."""
    chosen: dict[str, list[Any]] = {"network": [model.network]}
    for name, (param, kind) in PARAMS.items():
        text = values.get(name, "").strip()
        if not text:
            continue
        try:
            number = kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise refused(f"{name} must be {noun}, got {text[:40]!r}.") from None
        chosen[param] = [abs(number) if name == "Learning rate" else number]
    loss = SEGMENTATION_LOSSES.get(values.get("Loss function", ""))
    if model.task_id == fixtures.SEGMENTATION and loss:
        chosen["loss"] = [loss]
    return chosen


def _use_only(db: Session, user: User, lab_id: int, dataset: Dataset) -> None:
    """Attach `dataset` to the lab and detach the others: the job trains on it alone."""
    lab = labs_service.get_lab(db, user, lab_id, Role.WRITE)
    for attached in [a.dataset_id for a in lab.attachments if a.dataset_id != dataset.id]:
        labs_service.detach_dataset(db, user, lab_id, dataset_id=attached)
    labs_service.attach_dataset(db, user, lab_id, dataset_id=dataset.id)


@contextmanager
def _in_deephealth_words() -> Iterator[None]:
    """A template param's refusal named by its DeepHealth property."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field == WEIGHTS_PARAM and "no param" in exc.message:
            raise refused(
                "The lab's mlsteam.yml has no `weights` param: it cannot start from "
                "registered weights (train from the model's *_from_scratch weights)."
            ) from None
        names = {param: name for name, (param, _kind) in PARAMS.items()}
        name = names.get(exc.field or "", exc.field or "")
        raise refused(f"{name}: {exc.message}" if name else exc.message) from None


def train(db: Session, settings: Settings, user: User, body: TrainBody) -> dict[str, object]:
    """Start a training: the model's template lab in the project, the chosen dataset attached
    alone, one job with the resolved properties as params (WRITE on the project)."""
    if body.task_manager != "CELERY":
        raise refused("Labyard runs trainings itself: task_manager must be CELERY.")
    try:
        project = projects_service.require_project(db, user, body.project_id, Role.WRITE)
    except NotFound:
        raise invalid_pk("project_id", body.project_id) from None
    weight = weights.get_weight(db, user, body.weights_id)
    model = fixtures.get_model(weight.model_id) if weight and weight.model_id else None
    if weight is None or model is None:
        raise invalid_pk("weights_id", body.weights_id)
    try:
        dataset = datasets_service.get_dataset_for_user(db, user, body.dataset_id)
    except NotFound:
        raise invalid_pk("dataset_id", body.dataset_id) from None
    if service.dataset_task(settings, dataset) != model.task_id:
        raise refused("Model and dataset must belong to the same task")
    chosen = template_params(model, resolve_properties(db, model, dataset, body.properties))
    if weight.registered is not None:  # fine-tune: the lab's `weights` param names them
        chosen[WEIGHTS_PARAM] = [weight.name]
    if service.find_lab(db, user, project.id, model.template) is None:
        with _in_deephealth_words():  # checked before a new lab's folder is made
            check_selection(fixtures.template_config(model.template), chosen, limit=1).require()
    lab = service.ensure_lab(db, settings, user, project.id, model.template)
    _use_only(db, user, lab.id, dataset)
    with _in_deephealth_words():
        _sweep, jobs = submit_lab(db, settings, user, lab.id, chosen=chosen)
    job = jobs[0]
    return {
        "result": "ok",
        "process_id": process_id(job.id),
        "created": _stamp(job.queued_at),
        "updated": _stamp(job.queued_at),
    }


# ---------------------------------------------------------------- status, stop, output


def _counters(text: str) -> list[tuple[int, int]] | None:
    """The counters of a `Progress name=cur/total ...` line, or None."""
    parts = text.split()
    if len(parts) < 2 or parts[0] != "Progress":
        return None
    out = []
    for part in parts[1:]:
        _name, _, frac = part.partition("=")
        cur, _, total = frac.partition("/")
        if not (cur.isdigit() and total.isdigit()):
            return None
        out.append((int(cur), int(total)))
    return out


def deephealth_lines(texts: list[str]) -> list[str]:
    """The job's progress in DeepHealth's line format, one line per progress line."""
    out = []
    loss: float | None = None
    metric: float | None = None
    for raw in texts:
        _stamp_at, text = split_stamp(raw.encode("utf-8", errors="replace"))
        if text.startswith("Train"):
            for point in parse_metric_line(text):
                key = point.name.removeprefix("Train_")
                if key == "loss":
                    loss = point.value
                elif key not in ("lr", "time", "step_time"):
                    metric = point.value
            continue
        counters = _counters(text)
        if not counters:
            continue
        epoch, batch = counters[0], counters[-1] if len(counters) > 1 else (1, 1)
        line = f"Train - epoch [{epoch[0]}/{epoch[1]}] - batch [{batch[0]}/{batch[1]}]"
        if loss is not None:
            line += f" - loss={loss:.3f}"
            if metric is not None:
                line += f" - metric={metric:.3f}"
        out.append(line)
    return out


def status(
    db: Session, settings: Settings, user: User, value: str, *, full: bool
) -> dict[str, object]:
    """A process's state and progress as DeepHealth's /status reports them."""
    job = find_job(db, user, value, {"result": "error", "error": "Process not found"})
    state = STATES.get(JobStatus(job.status), "PENDING")
    texts, _offset = artifacts.log_tail(
        settings, job.id, lines=FULL_LINES if full else STATUS_LINES
    )
    kind = "inference" if inference.is_inference(job) else "training"
    if kind == "inference":  # its own lines, as they are
        found = [split_stamp(t.encode("utf-8", "replace"))[1] for t in texts]
        found = [line for line in found if line.strip()]
    else:
        found = deephealth_lines(texts)
    lines = [] if state == "PENDING" else [f"Starting {kind}", *found]
    data: object = lines if full else (lines[-1] if lines else "")
    result = "ok"
    if state == "FAILURE":
        result, data = "error", job.reason or (lines[-1] if lines else "failed")
    return {
        "result": result,
        "status": {"process_type": kind, "process_status": state, "process_data": data},
    }


def stop(db: Session, user: User, value: str) -> dict[str, object]:
    """Stop a process (WRITE on its project) through the jobs service."""
    gone: dict[str, object] = {"result": "Process already stopped or non existing"}
    job = find_job(db, user, value, gone)
    try:
        jobs_service.stop_job(db, user, job.id)
    except Conflict:
        raise DeepHealthError(404, gone) from None
    return {"result": "Training stopped"}


def output(db: Session, settings: Settings, user: User, value: str) -> dict[str, object]:
    """A process's output: its output files (relative paths), once it started."""
    job = find_job(db, user, value, {"result": "Process stopped before finishing or non existing."})
    if inference.is_inference(job):
        return inference.outputs(db, settings, user, job)
    if job.status == JobStatus.QUEUED:
        return {"result": "Process in execution. Try later for output results."}
    files, _cut = artifacts.list_outputs(settings, job.id)
    return {"outputs": [f.path for f in files]}


# ---------------------------------------------------------------- trainings


def _project_jobs(db: Session, user: User, project_id: int) -> list[Job]:
    try:
        projects_service.require_project(db, user, project_id)
    except NotFound:
        message = f"'{user.username}' has no permission to view Project {project_id}"
        raise refused(message, 403) from None
    labs = labs_service.list_labs(db, user, project_id=project_id)
    found: list[Job] = []
    for lab in labs:
        if lab.name in service.TASK_OF_LAB:
            found += jobs_service.list_jobs(db, user, project_id=project_id, lab_id=lab.id)
    return sorted(found, key=lambda j: j.id)


def inferences(db: Session, user: User, project_id: int) -> list[dict[str, object]]:
    """The project's inference jobs (a non-member is refused as for trainings)."""
    _project_jobs(db, user, project_id)
    return inference.listing(db, user, project_id, process_id)


def start_inference(
    db: Session, settings: Settings, user: User, body: InferenceBody
) -> dict[str, object]:
    """Queue an inference job of registered weights over a dataset."""
    if body.task_manager != "CELERY":
        raise refused("Labyard runs inferences itself: task_manager must be CELERY.")
    return inference.start(db, settings, user, body, process_id)


def start_single_inference(
    db: Session, settings: Settings, user: User, body: SingleInferenceBody
) -> dict[str, object]:
    """Queue registered weights' "try one image" job on the image the body carries."""
    if body.task_manager != "CELERY":
        raise refused("Labyard runs inferences itself: task_manager must be CELERY.")
    return inference.start_single(db, settings, user, body, process_id)


def _model_of(job: Job) -> fixtures.Model | None:
    network = job.params.get("network")
    return next((m for m in fixtures.models() if m.network == network), None)


def trainings(db: Session, user: User, project_id: int) -> list[dict[str, object]]:
    """The project's DeepHealth trainings (its DeepHealth labs' jobs), oldest first, each
    with the weights registered from it (the newest), if any."""
    jobs = _project_jobs(db, user, project_id)
    produced = {
        w.source_job_id: w.id
        for w in sorted(
            weights_service.list_weights(db, user, project_id=project_id), key=lambda w: w.id
        )
    }
    return [
        {
            "id": job.id,
            "celery_id": process_id(job.id),
            "project_id": job.project_id,
            "modelweights_id": produced.get(job.id),
            "created": _stamp(job.queued_at),
            "updated": _stamp(job.finished_at or job.started_at or job.queued_at),
        }
        for job in jobs
    ]


def training_settings(
    db: Session, user: User, training_id: int, property_id: int | None
) -> list[dict[str, object]]:
    """The properties a training ran with (read back from its job's params)."""
    try:
        job = jobs_service.get_job(db, user, training_id)
    except NotFound:
        raise DeepHealthError(404, {"detail": "Not found."}) from None
    by_param = {param: name for name, (param, _kind) in PARAMS.items()}
    values = {by_param[k]: str(v) for k, v in job.params.items() if k in by_param}
    values["Input width"] = values.get("Input height", "")
    rows: list[dict[str, object]] = [
        {
            "id": job.id * 100 + int(str(p["id"])),
            "training_id": job.id,
            "property_id": p["id"],
            "value": values.get(str(p["name"]), ""),
        }
        for p in fixtures.PROPERTIES
        if property_id is None or p["id"] == property_id
    ]
    if property_id is None:
        model = _model_of(job)
        dataset_ids = [d.get("dataset_id") for d in job.datasets]
        rows.append(
            {
                "dataset_id": dataset_ids[0] if dataset_ids else None,
                "model_id": model.id if model else None,
                "modelweights_id": None,
            }
        )
    return rows
