"""What a model file is, read from its bytes (never by running or unpickling it), and what
the job that wrote it says about it (params, confusion_matrix.json, its metric series).

    found = inspect_model(output_root, "model.onnx")       # format, files to copy, input shape
    meta = job_metadata(output_root, job.params, found, metrics)  # framework, task, classes

Formats: ONNX (`.onnx`, parsed as protobuf for its input shape), PyTorch (`.pt` / `.pth`: a
torch zip or a pickle, never loaded here), TensorFlow SavedModel (a folder holding
`saved_model.pb`) and Keras `.h5` (HDF5). An ONNX file keeps the weights the classification
template writes beside it too (`model.pt` of a PyTorch job, `best.weights.h5` of a
TensorFlow one), so jobs of that framework can fine-tune from it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard import paths
from labyard.errors import InvalidInput, NotFound
from labyard.jobs.models import MetricSeries

MAX_ONNX_PARSE = 512 * 1024 * 1024  # larger files keep the params' input shape
MAX_META_BYTES = 1024 * 1024
# the weights the classification template writes beside model.onnx (PyTorch, Keras)
COMPANIONS = ("model.pt", "best.weights.h5")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
FRAMEWORKS = ("pytorch", "tensorflow")
FORMAT_FRAMEWORK = {
    "pytorch_state_dict": "pytorch",
    "savedmodel": "tensorflow",
    "keras_h5": "tensorflow",
}


@dataclass(frozen=True)
class FoundModel:
    """A model in a job's output: its format, its path (relative to the output), and what
    is copied (paths relative to the output; a SavedModel is its folder's files)."""

    format: str
    path: str
    copy: list[str]
    input_shape: list[Any] = field(default_factory=list)


def inspect_model(root: Path, path: str) -> FoundModel:
    """The model at `path` inside the output folder `root`: NotFound when missing or leading
    out (`..`, links), InvalidInput when it is no model file Labyard knows."""
    parts = paths.split_relative(path)
    if not parts:
        raise InvalidInput("Name the model file inside the job's output.", field="path")
    target = paths.resolve_existing(root, path)  # `..` or a link leading out: NotFound
    if target != root.resolve().joinpath(*parts):
        raise InvalidInput(f"{path!r} is a link; choose the file itself.", field="path")
    rel = "/".join(parts)
    if target.is_dir():
        if not (target / "saved_model.pb").is_file():
            raise InvalidInput(
                f"{rel!r} is a folder without saved_model.pb; choose a model file "
                "(ONNX, PyTorch .pt/.pth, Keras .h5) or a SavedModel folder.",
                field="path",
            )
        files = [paths.relative(root, f) for f in paths.walk_files(target)]
        return FoundModel("savedmodel", rel, files)
    fmt = _file_format(target)
    copy = [rel]
    shape: list[Any] = []
    if fmt == "onnx":
        shape = onnx_input_shape(target)
        for name in COMPANIONS:
            sibling = target.parent / name
            if sibling.is_file() and not sibling.is_symlink():
                copy.append(paths.relative(root, sibling))
    return FoundModel(fmt, rel, copy, shape)


def _file_format(target: Path) -> str:
    name = target.name.lower()
    with paths.open_nofollow(target) as fh:
        head = fh.read(8)
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith((".pt", ".pth")) and (zipfile.is_zipfile(target) or head[:1] == b"\x80"):
        return "pytorch_state_dict"
    if name.endswith(".h5") and head == HDF5_MAGIC:
        return "keras_h5"
    raise InvalidInput(
        f"{target.name!r} is not a model file Labyard knows: choose an ONNX file (.onnx), "
        "PyTorch weights (.pt/.pth), a Keras .h5 file or a SavedModel folder.",
        field="path",
    )


def onnx_input_shape(target: Path) -> list[Any]:
    """The first graph input's shape without the batch axis (None: a free axis); InvalidInput
    when the file does not parse as ONNX."""
    if target.stat().st_size > MAX_ONNX_PARSE:
        return []
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model(str(target), load_external_data=False)
    except (DecodeError, ValueError, OSError) as exc:
        raise InvalidInput(f"{target.name!r} is not a valid ONNX file.", field="path") from exc
    if not model.graph.node:  # an empty file parses as an empty model
        raise InvalidInput(f"{target.name!r} is not a valid ONNX file.", field="path")
    if not model.graph.input:
        return []
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return shape[1:]


@dataclass(frozen=True)
class JobMeta:
    """What the source job tells about its model."""

    framework: str
    task: str
    classes: list[str]
    input_shape: list[Any]
    metrics: dict[str, float]


def job_metadata(
    root: Path, params: dict[str, Any], found: FoundModel, metrics: dict[str, float]
) -> JobMeta:
    """Framework (the job's `framework` param, else the format's), task and classes (the
    template's confusion_matrix.json), input shape (the model's, else the job's
    `image_size`), with the job's final `metrics` (final_metrics)."""
    framework = str(params.get("framework", ""))
    if framework not in FRAMEWORKS:
        framework = FORMAT_FRAMEWORK.get(found.format, "")
    classes = _classes(root)
    task = str(params.get("task", "")) or ("classification" if classes else "")
    shape = found.input_shape
    if not shape and isinstance(params.get("image_size"), int):
        size = params["image_size"]
        shape = [params.get("channels") if isinstance(params.get("channels"), int) else None]
        shape += [size, size]
    return JobMeta(framework, task[:32], classes, shape, metrics)


def _classes(root: Path) -> list[str]:
    raw = paths.read_inside(root, "confusion_matrix.json", MAX_META_BYTES)
    if raw is None:
        return []
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return []
    classes = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(classes, list):
        return []
    return [str(c)[:200] for c in classes[:10_000]]


def final_metrics(db: Session, job_id: int) -> dict[str, float]:
    """Each metric series' last value ("Validation_acc": 0.93), by the series' name."""
    rows = db.execute(
        select(MetricSeries.name, MetricSeries.last_value)
        .where(MetricSeries.job_id == job_id)
        .order_by(MetricSeries.name, MetricSeries.x_name)
    )
    return {name: float(value) for name, value in rows}


def require_output(root: Path) -> None:
    """NotFound unless the job has an output folder."""
    if not root.is_dir():
        raise NotFound("The job has no output folder.", field="path")
