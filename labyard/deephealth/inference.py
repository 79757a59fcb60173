"""DeepHealth's inferences as Labyard's inference jobs (labyard.weights.inference): POST
/inference queues one for registered weights over a dataset; GET /inference lists a
project's; /output reads a finished one's predictions.csv as DeepHealth's classification
rows `[name, base64 image, "[[p0, p1, ...]]"]` (segmentation: its mask files).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.datasets.models import Dataset
from labyard.deephealth import weights
from labyard.deephealth.errors import DeepHealthError, invalid_pk, refused
from labyard.deephealth.schemas import InferenceBody, SingleInferenceBody
from labyard.errors import InvalidInput, NotFound
from labyard.jobs import artifacts
from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job, JobStatus
from labyard.paths import read_inside
from labyard.projects import service as projects_service
from labyard.projects.models import Role
from labyard.weights import inference as weights_inference

SWEEP_PREFIX = "infer-"  # labyard.weights.inference names its sweeps infer-<weights>
MAX_ROWS = 1000
MAX_IMAGE_BYTES = 2 * 1024 * 1024
DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+(?:;[^,;]*)*;base64,(.*)$", re.DOTALL)


def is_inference(job: Job) -> bool:
    """True for an inference job (no lab; its sweep named infer-<weights>)."""
    return job.lab_id is None and job.name.startswith(SWEEP_PREFIX)


def _stamp(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment is not None else None


def _registered_weight(
    db: Session, user: User, project_id: int, modelweights_id: int
) -> weights.Weight:
    """The registered weights (READ) to run, in a project the caller may WRITE."""
    try:
        projects_service.require_project(db, user, project_id, Role.WRITE)
    except NotFound:
        raise invalid_pk("project_id", project_id) from None
    weight = weights.get_weight(db, user, modelweights_id)
    if weight is None:
        raise invalid_pk("modelweights_id", modelweights_id)
    if weight.registered is None:
        raise refused(f"{weight.name} are no trained weights: nothing to run inference with.")
    return weight


def _queued(submit: Callable[[], Job], process_id: Callable[[int], str]) -> dict[str, object]:
    """Queue the job `submit` makes; DeepHealth's answer, or its 400 for a refused input."""
    try:
        job = submit()
    except InvalidInput as exc:
        raise refused(exc.message) from None
    stamp = _stamp(job.queued_at)
    return {"result": "ok", "process_id": process_id(job.id), "created": stamp, "updated": stamp}


def start(
    db: Session,
    settings: Settings,
    user: User,
    body: InferenceBody,
    process_id: Callable[[int], str],
) -> dict[str, object]:
    """Queue an inference job of registered weights over a dataset, in the project (WRITE)."""
    weight = _registered_weight(db, user, body.project_id, body.modelweights_id)
    return _queued(
        lambda: weights_inference.submit_inference(
            db,
            settings,
            user=user,
            weights_id=weight.id,
            dataset_id=body.dataset_id,
            project_id=body.project_id,
        ),
        process_id,
    )


def image_bytes(body: SingleInferenceBody) -> bytes:
    """The image of an /inferenceSingle body: its `image_data` data URL decoded. An
    `image_url` alone is refused: the server fetches nothing from the network."""
    if not body.image_data and not body.image_url:
        message = "At least one between `image_url` and `image_data` is needed."
        raise DeepHealthError(400, {"non_field_errors": [message]})
    if not body.image_data:
        raise refused("Labyard fetches no image URLs: send the image as `image_data`.")
    found = DATA_URL.match(body.image_data)
    if found is None:
        raise refused("`image_data` must be a data URL (data:image/...;base64,...).")
    try:
        return base64.b64decode(found.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise refused("`image_data` is no valid base64.") from None


def start_single(
    db: Session,
    settings: Settings,
    user: User,
    body: SingleInferenceBody,
    process_id: Callable[[int], str],
) -> dict[str, object]:
    """Queue registered weights' "try one image" job on the body's image, in the project."""
    data = image_bytes(body)
    weight = _registered_weight(db, user, body.project_id, body.modelweights_id)
    return _queued(
        lambda: weights_inference.try_image(
            db,
            settings,
            user=user,
            weights_id=weight.id,
            filename="image",
            data=data,
            project_id=body.project_id,
        ),
        process_id,
    )


def _dataset_of(job: Job) -> int | None:
    found = [d.get("dataset_id") for d in job.datasets if d.get("kind") != "weights"]
    return found[0] if found else None


def _weights_of(job: Job) -> int | None:
    found = [d.get("weights_id") for d in job.datasets if d.get("kind") == "weights"]
    return found[0] if found else None


def listing(
    db: Session, user: User, project_id: int, process_id: Callable[[int], str]
) -> list[dict[str, object]]:
    """The project's inference jobs as DeepHealth lists inferences."""
    return [
        {
            "project_id": job.project_id,
            "modelweights_id": _weights_of(job),
            "dataset_id": _dataset_of(job),
            "celery_id": process_id(job.id),
            "created": _stamp(job.queued_at),
            "updated": _stamp(job.finished_at or job.started_at or job.queued_at),
        }
        for job in sorted(
            jobs_service.list_jobs(db, user, project_id=project_id), key=lambda j: j.id
        )
        if is_inference(job)
    ]


def outputs(db: Session, settings: Settings, user: User, job: Job) -> dict[str, object]:
    """A finished inference's results in DeepHealth's shape."""
    if job.status != JobStatus.SUCCEEDED:
        return {"result": "Process in execution. Try later for output results."}
    output = jobs_service.job_dir(settings, job.id) / "output"
    data = read_inside(output, weights_inference.PREDICTIONS, 16 * 1024 * 1024)
    if data is None:  # a segmenter's masks
        files, _cut = artifacts.list_outputs(settings, job.id)
        return {"outputs": [f.path for f in files if f.path.startswith("masks/")]}
    dataset = _readable_dataset(db, user, _dataset_of(job))
    rows = []
    for row in list(csv.DictReader(io.StringIO(data.decode("utf-8", "replace"))))[:MAX_ROWS]:
        path = row.get("path", "")
        probabilities = [float(v) for k, v in row.items() if k.startswith("p_") and v]
        rows.append(
            [path.rsplit("/", 1)[-1], _image(settings, dataset, path), f"[{probabilities}]"]
        )
    return {"outputs": rows}


def _readable_dataset(db: Session, user: User, dataset_id: int | None) -> Dataset | None:
    if dataset_id is None:
        return None
    try:
        return datasets_service.get_dataset_for_user(db, user, dataset_id)
    except NotFound:
        return None


def _image(settings: Settings, dataset: Dataset | None, path: str) -> str:
    """The image's bytes in base64 (as DeepHealth sends them), '' when unreadable."""
    if dataset is None:
        return ""
    try:
        data = read_inside(datasets_service.dataset_dir(settings, dataset), path, MAX_IMAGE_BYTES)
    except (NotFound, OSError):
        return ""
    return base64.b64encode(data).decode("ascii") if data else ""
