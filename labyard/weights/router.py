"""The weights JSON API: register, list, get, change, delete, download, inference (over a
dataset, uploaded images, one image)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse, Response, StreamingResponse

from labyard.datasets.files import stream_zip
from labyard.jobs.router import JobOut, jobs_out
from labyard.web.bodies import MULTIPART_SLACK, streams_body
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.weights import inference, register, service, uploads
from labyard.weights.schemas import (
    InferenceCreate,
    WeightsCreate,
    WeightsOut,
    WeightsPatch,
    weights_out,
)

router = APIRouter(prefix="/api/v1", tags=["weights"])
UPLOADS_HELP = (
    f"The images (PNG, JPEG, BMP, GIF, WebP; at most {uploads.MAX_UPLOAD_FILES}, each at most "
    "10 MiB); each is predicted under its file name"
)


@router.post("/weights", response_model=WeightsOut, status_code=201)
def register_weights(
    body: WeightsCreate, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> WeightsOut:
    """Copy a finished job's model (default its exported model.onnx) into new weights of the
    job's project (WRITE). 409: the job has not finished or the name is taken; 404: no such
    file in the output (or it leads out); 422: not a model file, or a bad name."""
    weights = register.register_weights(
        db,
        settings,
        user=user,
        job_id=body.job_id,
        name=body.name,
        path=body.path,
        description=body.description,
    )
    return weights_out(weights)


@router.get("/weights", response_model=list[WeightsOut])
def list_weights(
    user: CurrentUser, db: SessionDep, project_id: int | None = None
) -> list[WeightsOut]:
    """The weights of the user's projects (or one project) and the public ones."""
    return [weights_out(w) for w in service.list_weights(db, user, project_id=project_id)]


@router.get("/weights/{weights_id}", response_model=WeightsOut)
def get_weights(weights_id: int, user: CurrentUser, db: SessionDep) -> WeightsOut:
    """One weights entry (READ)."""
    return weights_out(service.get_weights_for_user(db, user, weights_id))


@router.patch("/weights/{weights_id}", response_model=WeightsOut)
def update_weights(
    weights_id: int, body: WeightsPatch, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> WeightsOut:
    """Rename (unless in use), describe, or make public and read-only (project owners)."""
    weights = service.update_weights(
        db,
        settings,
        user=user,
        weights_id=weights_id,
        name=body.name,
        description=body.description,
        public=body.public,
    )
    return weights_out(weights)


@router.delete("/weights/{weights_id}", status_code=204)
def delete_weights(
    weights_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> None:
    """Delete weights and their files (WRITE). 409 while a lab or a live job uses them."""
    service.delete_weights(db, settings, user=user, weights_id=weights_id)


@router.get("/weights/{weights_id}/download")
def download_weights(
    weights_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The registered file (a SavedModel folder as a zip) (READ)."""
    weights, target = service.download_target(db, settings, user=user, weights_id=weights_id)
    if target.is_file():
        return FileResponse(target, filename=target.name, content_disposition_type="attachment")
    name = quote(f"{weights.name}.zip", safe="")
    return StreamingResponse(
        stream_zip(target),
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename*=utf-8''{name}"},
    )


@router.post("/weights/{weights_id}/inference", response_model=JobOut, status_code=201)
def run_inference(
    weights_id: int, body: InferenceCreate, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> JobOut:
    """Queue a job running the weights (READ) over a dataset (READ) or a file or folder of
    it (`path`) on `flavor`; its output gets predictions.csv (masks/ for segmentation).
    422: an unknown or unreadable dataset, a bad path, weights that cannot predict."""
    job = inference.submit_inference(
        db,
        settings,
        user=user,
        weights_id=weights_id,
        dataset_id=body.dataset_id,
        path=body.path,
        flavor=body.flavor,
        project_id=body.project_id,
    )
    return jobs_out(db, [job], settings.fair_share_days)[0]


@router.post("/weights/{weights_id}/inference/uploads", response_model=JobOut, status_code=201)
@streams_body(lambda settings: settings.weights_upload_max_bytes + MULTIPART_SLACK)
def infer_uploads(
    weights_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile] | None, File(description=UPLOADS_HELP)] = None,
    flavor: Annotated[str, Form(max_length=32)] = "cpu",
    project_id: Annotated[int | None, Form()] = None,
) -> JobOut:
    """Queue a job running the weights (READ) over uploaded images (several `files` parts)
    on `flavor`; its predictions.csv has a row per image under its file name. 422 naming
    the file: no images, a non-image, an empty or hostile file name, two alike, too many;
    413: a body over `LABYARD_WEIGHTS_UPLOAD_MAX_BYTES` (refused before it is read)."""
    job = inference.infer_uploads(
        db,
        settings,
        user=user,
        weights_id=weights_id,
        images=[(f.filename or "", f.file) for f in files or []],
        flavor=flavor,
        project_id=project_id,
    )
    return jobs_out(db, [job], settings.fair_share_days)[0]


@router.post("/weights/{weights_id}/try", response_model=JobOut, status_code=201)
@streams_body(lambda settings: uploads.MAX_IMAGE_BYTES + MULTIPART_SLACK)
def try_image(
    weights_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File()],
    flavor: Annotated[str, Form(max_length=32)] = "cpu",
) -> JobOut:
    """A short inference job over one uploaded image (at most 10 MiB)."""
    data = image.file.read(uploads.MAX_IMAGE_BYTES + 1)
    job = inference.try_image(
        db,
        settings,
        user=user,
        weights_id=weights_id,
        filename=image.filename or "image",
        data=data,
        flavor=flavor,
    )
    return jobs_out(db, [job], settings.fair_share_days)[0]
