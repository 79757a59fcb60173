"""Inference jobs: registered weights run over a dataset (or a folder of it, or uploaded
images: labyard.weights.uploads) as an ordinary Labyard job.

The job's code is a copy of the weights' template (classification or segmentation) plus
`labyard_infer.py`, which resolves the job contract's folders and runs the template's own
predict.py: `predictions.csv` (path, predicted_class, confidence, p_<class>...) for
classifiers, `masks/` for segmenters. No model code ever runs in the server process.
"""

from __future__ import annotations

import csv
import io
import shlex
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import service as datasets_service
from labyard.errors import InvalidInput, NotFound
from labyard.jobs import service as jobs_service
from labyard.jobs.models import Job
from labyard.paths import read_inside, resolve_existing
from labyard.projects.models import Role
from labyard.projects.service import role_of
from labyard.templates_catalog import copy_template, get_template
from labyard.weights.models import Weights
from labyard.weights.service import WEIGHTS_KIND, get_weights_for_user, weights_dir, work_dir
from labyard.weights.uploads import UPLOAD_NAME, Image, drop_upload, save_uploads
from labyard.weights.uploads import upload_job_ended as upload_job_ended  # wired in labyard.app
from labyard.weights.uploads import uploads_dir as uploads_dir  # (imported from here by tests)

TEMPLATES = {"classification": "classification", "segmentation": "segmentation"}
MODEL_FILE = "model.pt"
PREDICTIONS = "predictions.csv"  # what a classifier's inference job writes
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


# ---------------------------------------------------------------- uploaded images


def infer_uploads(
    db: Session,
    settings: Settings,
    *,
    user: User,
    weights_id: int,
    images: Sequence[Image],
    flavor: str = "cpu",
    project_id: int | None = None,
    field: str = "files",
) -> Job:
    """An inference job over uploaded images (each request's in one folder; every image
    checked before anything is written, see labyard.weights.uploads): predictions.csv gets
    a row per image under its saved name. The folder is removed again when the job cannot
    be created, and when the job ends (upload_job_ended)."""
    weights = get_weights_for_user(db, user, weights_id)
    template_of(weights)
    folder = save_uploads(settings, images, field=field)
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
        drop_upload(folder)
        raise


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
    """A short inference job over one uploaded image (infer_uploads; `field` "image")."""
    return infer_uploads(
        db,
        settings,
        user=user,
        weights_id=weights_id,
        images=[(filename, io.BytesIO(data))],
        flavor=flavor,
        project_id=project_id,
        field="image",
    )


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
