"""Inference jobs: registered weights run over a dataset (or a folder of it, or one
uploaded image) as an ordinary Labyard job.

The job's code is a copy of the weights' template (classification or segmentation) plus
`labyard_infer.py`, which resolves the job contract's folders and runs the template's own
predict.py: `predictions.csv` (path, predicted_class, confidence, p_<class>...) for
classifiers, `masks/` for segmenters. No model code ever runs in the server process.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shlex
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.db.oncommit import on_commit
from labyard.errors import InvalidInput, NotFound
from labyard.jobs import service as jobs_service
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from labyard.paths import clean_name, read_inside, resolve_existing
from labyard.projects.models import Role
from labyard.projects.service import role_of
from labyard.templates_catalog import copy_template, get_template
from labyard.weights.models import Weights
from labyard.weights.service import WEIGHTS_KIND, get_weights_for_user, weights_dir, work_dir

TEMPLATES = {"classification": "classification", "segmentation": "segmentation"}
MODEL_FILE = "model.pt"
PREDICTIONS = "predictions.csv"  # what a classifier's inference job writes
UPLOAD_NAME = "upload"  # the input folder name of a "try one image" job
MAX_IMAGE_BYTES = 10 * 1024**2
IMAGE_MAGIC = {  # leading bytes -> suffix; only these are taken as images
    b"\x89PNG\r\n\x1a\n": ".png",
    b"\xff\xd8\xff": ".jpg",
    b"BM": ".bmp",
    b"GIF87a": ".gif",
    b"GIF89a": ".gif",
}
WRAPPER = '''"""Labyard's inference job: the template's predict.py over a mounted folder."""

import argparse
import os
import sys
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--weights", required=True, help="a folder of $MLSTEAM_WEIGHTS_DIR")
parser.add_argument("--dataset", required=True, help="a folder of $MLSTEAM_INPUT_DIR")
parser.add_argument("--path", default="", help="a file or folder inside the dataset")
parser.add_argument("--task", default="classification")
args = parser.parse_args()
model = Path(os.environ["MLSTEAM_WEIGHTS_DIR"]) / args.weights / "model.pt"
source = Path(os.environ["MLSTEAM_INPUT_DIR"]) / args.dataset / args.path
output = Path(os.environ.get("MLSTEAM_OUTPUT_DIR", "output"))
argv = ["--model", str(model), "--input", str(source)]
if os.environ.get("CUDA_VISIBLE_DEVICES"):
    argv += ["--device", "cuda"]
if args.task == "segmentation":
    argv += ["--output", str(output / "masks")]
else:
    argv += ["--output", str(output / "predictions.csv"), "--probabilities"]
sys.path.insert(0, str(Path(__file__).resolve().parent))
print("predict.py", *argv, flush=True)
import predict  # noqa: E402

sys.exit(predict.main(argv))
'''


def task_of(weights: Weights) -> str:
    """The weights' task; a segmenter's (whose job wrote no confusion_matrix.json) is told
    by its Dice / IoU metric series."""
    if weights.task:
        return weights.task
    names = [m.lower() for m in weights.metrics or {}]
    return "segmentation" if any(n.endswith(("_iou", "_dice")) for n in names) else ""


def template_of(weights: Weights) -> str:
    """The template whose predict.py runs the weights; InvalidInput when none can."""
    template = TEMPLATES.get(task_of(weights))
    if template is None or weights.framework not in ("", "pytorch"):
        raise InvalidInput(
            f"Weights {weights.name!r} ({weights.framework or '?'} {weights.task or 'no task'}) "
            "cannot run inference: only PyTorch classification and segmentation weights "
            "(a template's model.pt) can.",
            field="weights",
        )
    if MODEL_FILE not in (weights.files or []):
        raise InvalidInput(
            f"Weights {weights.name!r} hold no {MODEL_FILE}; inference runs the template's "
            "predict.py on it.",
            field="weights",
        )
    return template


def job_project(db: Session, user: User, weights: Weights, project_id: int | None) -> int:
    """The project the job runs in: the one asked for, else the weights' project when the
    user may submit there, else the user's default project (create_sweep checks WRITE)."""
    if project_id is not None:
        return project_id
    role = role_of(db, user, weights.project_id)
    if role is not None and role >= Role.WRITE:
        return weights.project_id
    if user.default_project_id is None:
        raise InvalidInput("Choose a project to run the inference job in.", field="project_id")
    return user.default_project_id


def dataset_input(
    db: Session, settings: Settings, user: User, dataset_id: int, path: str
) -> tuple[jobs_service.DatasetInput, str]:
    """The dataset (READ) as the job's input and `path` checked inside it (a clean relative
    path to an existing file or folder); InvalidInput naming the field otherwise."""
    try:
        dataset = datasets_service.get_dataset_for_user(db, user, dataset_id)
    except NotFound:
        raise InvalidInput("No such dataset that you can read.", field="dataset_id") from None
    root = datasets_service.dataset_dir(settings, dataset)
    try:
        target = resolve_existing(root, path)
    except NotFound:
        raise InvalidInput(
            f"No file or folder {path!r} in dataset {dataset.name!r}.", field="path"
        ) from None
    rel = target.relative_to(root.resolve()).as_posix() if target != root.resolve() else ""
    mount = jobs_service.DatasetInput(name=dataset.name, host_path=root, dataset_id=dataset.id)
    return mount, rel


def build_lab(settings: Settings, template: str, command: str) -> Path:
    """A scratch lab folder: the template's files and an mlsteam.yml running `command`."""
    source = get_template(template)
    config = yaml.safe_load((source.path / "mlsteam.yml").read_text(encoding="utf-8")) or {}
    lab = work_dir(settings) / f"infer-{uuid.uuid4().hex}"
    copy_template(source, lab)  # its files and its `include:` folders, as a new lab gets
    (lab / "labyard_infer.py").write_text(WRAPPER, encoding="utf-8")
    text = {"command": command, "params": {}}
    if config.get("image"):
        text["image"] = config["image"]
    (lab / "mlsteam.yml").write_text(yaml.safe_dump(text, sort_keys=False), encoding="utf-8")
    return lab


def submit_inference(
    db: Session,
    settings: Settings,
    *,
    user: User,
    weights_id: int,
    dataset: jobs_service.DatasetInput | None = None,
    dataset_id: int | None = None,
    path: str = "",
    flavor: str = "cpu",
    project_id: int | None = None,
) -> Job:
    """Queue an inference job of the weights (READ) over a dataset (READ) or a folder of it,
    in a project the user may WRITE. The job's output gets predictions.csv (or masks/)."""
    weights = get_weights_for_user(db, user, weights_id)
    template = template_of(weights)
    if dataset is None:
        if dataset_id is None:
            raise InvalidInput("Choose a dataset.", field="dataset_id")
        dataset, path = dataset_input(db, settings, user, dataset_id, path)
    mounts = [
        dataset,
        jobs_service.DatasetInput(
            name=weights.name,
            host_path=weights_dir(settings, weights),
            kind=WEIGHTS_KIND,
            weights_id=weights.id,
        ),
    ]
    argv = ["python", "labyard_infer.py", "--weights", weights.name, "--dataset", dataset.name]
    argv += ["--path", path, "--task", task_of(weights)]
    command = shlex.join(argv)
    project = job_project(db, user, weights, project_id)
    lab = build_lab(settings, template, command)
    try:
        sweep = jobs_service.create_sweep(
            db,
            user,
            settings=settings,
            project_id=project,
            lab_dir=lab,
            flavor=flavor or "cpu",
            datasets=mounts,
            name=f"infer-{weights.name}"[:150],
        )
    finally:
        shutil.rmtree(lab, ignore_errors=True)
    return jobs_service.list_jobs(db, user, sweep_id=sweep.id)[0]


# ---------------------------------------------------------------- try one image


def image_suffix(data: bytes) -> str:
    """The suffix of an image's bytes; InvalidInput for anything that is not one."""
    for magic, suffix in IMAGE_MAGIC.items():
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    raise InvalidInput("Not an image (PNG, JPEG, BMP, GIF or WebP).", field="image")


def save_upload(settings: Settings, filename: str, data: bytes) -> Path:
    """One uploaded image in a fresh input folder of its own; the folder."""
    if not data:
        raise InvalidInput("The image is empty.", field="image")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(
            f"The image is larger than {MAX_IMAGE_BYTES // 1024**2} MiB.", field="image"
        )
    suffix = image_suffix(data)
    stem = Path(filename or "image").stem or "image"
    try:
        name = clean_name(stem, field="image") + suffix
    except InvalidInput:
        name = "image" + suffix
    folder = uploads_dir(settings) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    return folder


def uploads_dir(settings: Settings) -> Path:
    """Where "try one image" inputs live (each in a folder of its own)."""
    return settings.data_dir / "weights" / ".uploads"


def try_image(
    db: Session,
    settings: Settings,
    *,
    user: User,
    weights_id: int,
    filename: str,
    data: bytes,
    flavor: str = "cpu",
    project_id: int | None = None,
) -> Job:
    """A short inference job over one uploaded image (checked before anything is written);
    the image's folder is removed again when the job cannot be created, and when the job
    ends (upload_job_ended)."""
    weights = get_weights_for_user(db, user, weights_id)
    template_of(weights)
    folder = save_upload(settings, filename, data)
    upload = jobs_service.DatasetInput(name=UPLOAD_NAME, host_path=folder)
    try:
        return submit_inference(
            db,
            settings,
            user=user,
            weights_id=weights_id,
            dataset=upload,
            flavor=flavor,
            project_id=project_id,
        )
    except Exception:
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
        raise


def try_result(
    db: Session, settings: Settings, *, user: User, job_id: int
) -> tuple[Job, list[dict[str, str]]]:
    """A "try one image" job (READ) and, once it has succeeded, its predictions.csv rows."""
    job = jobs_service.get_job(db, user, job_id)
    if job.status != "succeeded":
        return job, []
    data = read_inside(jobs_service.job_dir(settings, job.id) / "output", PREDICTIONS, 1 << 20)
    rows = list(csv.DictReader(io.StringIO((data or b"").decode("utf-8", "replace"))))
    return job, rows[:20]


# ---------------------------------------------------------------- upload cleanup

UPLOAD_FOLDER_RE = re.compile(r"^[0-9a-f]{32}$")  # save_upload's uuid4().hex folders
ORPHAN_AGE = timedelta(hours=1)  # an unused upload this old lost its job (deleted queued)


def _upload_folders(job: Job) -> list[Path]:
    """The "try one image" folders a job reads (an upload input under weights/.uploads)."""
    found = []
    for mount in job.datasets or []:
        folder = Path(str(mount.get("host_path", "")))
        if (
            mount.get("name") == UPLOAD_NAME
            and mount.get("dataset_id") is None
            and UPLOAD_FOLDER_RE.match(folder.name)
            and folder.parent.name == ".uploads"
            and folder.parent.parent.name == "weights"
        ):
            found.append(folder)
    return found


def _orphans(db: Session, uploads: Path) -> list[Path]:
    """Upload folders over ORPHAN_AGE old that no queued or live job reads (their job was
    deleted before it ran)."""
    waiting = [JobStatus.QUEUED, *LIVE_STATUSES]
    used = {
        str(folder)
        for job in db.scalars(select(Job).where(Job.status.in_(waiting)))
        for folder in _upload_folders(job)
    }
    cutoff = (datetime.now(UTC) - ORPHAN_AGE).timestamp()
    found = []
    with contextlib.suppress(OSError):
        for folder in uploads.iterdir():
            if UPLOAD_FOLDER_RE.match(folder.name) and str(folder) not in used:
                with contextlib.suppress(OSError):
                    if folder.stat().st_mtime < cutoff:
                        found.append(folder)
    return found


def upload_job_ended(job: Job) -> None:
    """jobs.JOB_FINISHED handler (wired in labyard.app): once the job's final status is
    committed, its uploaded image's folder goes, with the orphans of deleted queued jobs."""
    own = _upload_folders(job)
    db = object_session(job)
    if not own or db is None:
        return
    doomed = [*own, *_orphans(db, own[0].parent)]

    def remove() -> None:
        for folder in doomed:
            shutil.rmtree(folder, ignore_errors=True)

    on_commit(db, remove)
