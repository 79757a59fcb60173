"""The weights pages: the list, one weights entry with its lineage, and the form actions
(register, which the Files tab of a finished job's page posts to, edit, publish, delete,
inference over a dataset or uploaded images, "try one image").
Each action's JSON twin is in router.py; downloads use the API's GET route, which accepts
the session cookie."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from labyard.datasets.service import list_datasets
from labyard.flavors.service import list_flavors
from labyard.projects.service import list_projects
from labyard.web.bodies import MULTIPART_SLACK, streams_body
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import render
from labyard.weights import inference, register, service, uploads
from labyard.weights.service import DEFAULT_PATH

router = APIRouter(include_in_schema=False)
NAV_LINKS = [("Weights", "/weights")]


@router.get("/weights")
def weights_page(request: Request, user: CurrentUser, db: SessionDep) -> Response:
    """The weights of the user's projects and the public ones."""
    projects = {p.id: p for p, _ in list_projects(db, user)}
    rows = [(w, projects.get(w.project_id)) for w in service.list_weights(db, user)]
    return render(request, "weights.html", {"rows": rows})


@router.post("/weights")
def register_weights(
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    job_id: Annotated[int, Form()],
    name: Annotated[str, Form(max_length=100)],
    path: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """ "Register as weights" (the job page, the list): register, then open them."""
    weights = register.register_weights(
        db, settings, user=user, job_id=job_id, name=name, path=path or DEFAULT_PATH
    )
    return Response(status_code=204, headers={"HX-Redirect": f"/weights/{weights.id}"})


@router.get("/weights/{weights_id}")
def weights_detail(
    request: Request, weights_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """One weights entry: metadata, metrics, lineage (source job, parent chain), actions."""
    weights = service.get_weights_for_user(db, user, weights_id)
    context = {
        "weights": weights,
        "chain": service.lineage(db, weights),
        "writable": service.can_write(db, user, weights),
        "in_use": service.in_use_reason(db, settings, weights),
        "task": inference.task_of(weights),
        "datasets": list_datasets(db, user),
        "flavors": list_flavors(db),
        "max_files": uploads.MAX_UPLOAD_FILES,
        "max_image": uploads.MAX_IMAGE_BYTES,
        "max_total": settings.weights_upload_max_bytes,
    }
    return render(request, "weights_detail.html", context)


@router.post("/weights/{weights_id}/edit")
def edit_weights(
    weights_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=100)],
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Rename and describe (PATCH's twin)."""
    service.update_weights(
        db, settings, user=user, weights_id=weights_id, name=name, description=description
    )
    return Response(status_code=204, headers={"HX-Redirect": f"/weights/{weights_id}"})


@router.post("/weights/{weights_id}/publish")
def publish_weights(
    weights_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Make the weights public and read-only (PATCH {"public": true}'s twin)."""
    service.update_weights(db, settings, user=user, weights_id=weights_id, public=True)
    return Response(status_code=204, headers={"HX-Redirect": f"/weights/{weights_id}"})


@router.post("/weights/{weights_id}/delete")
def delete_weights(
    weights_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Delete after the page's confirmation; a refusal shows next to the button."""
    service.delete_weights(db, settings, user=user, weights_id=weights_id)
    return Response(status_code=204, headers={"HX-Redirect": "/weights"})


@router.post("/weights/{weights_id}/inference")
def run_inference(
    weights_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    dataset_id: Annotated[int, Form()],
    path: Annotated[str, Form(max_length=4096)] = "",
    flavor: Annotated[str, Form(max_length=32)] = "cpu",
) -> Response:
    """The "Inference" form (POST /api/v1/weights/{id}/inference's twin): open the job."""
    job = inference.submit_inference(
        db, settings, user=user, weights_id=weights_id, dataset_id=dataset_id, path=path,
        flavor=flavor,
    )  # fmt: skip
    return Response(status_code=204, headers={"HX-Redirect": f"/jobs/{job.id}"})


@router.post("/weights/{weights_id}/inference/uploads")
@streams_body(lambda settings: settings.weights_upload_max_bytes + MULTIPART_SLACK)
def infer_uploads(
    weights_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile] | None, File()] = None,
    flavor: Annotated[str, Form(max_length=32)] = "cpu",
) -> Response:
    """The "Inference" form's images (POST /api/v1/weights/{id}/inference/uploads's twin):
    open the job; a refusal shows next to the file input."""
    job = inference.infer_uploads(
        db, settings, user=user, weights_id=weights_id,
        images=[(f.filename or "", f.file) for f in files or []], flavor=flavor,
    )  # fmt: skip
    return Response(status_code=204, headers={"HX-Redirect": f"/jobs/{job.id}"})


@router.post("/weights/{weights_id}/try")
@streams_body(lambda settings: uploads.MAX_IMAGE_BYTES + MULTIPART_SLACK)
def try_image(
    request: Request,
    weights_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File()],
    flavor: Annotated[str, Form(max_length=32)] = "cpu",
) -> Response:
    """ "Try one image" (POST /api/v1/weights/{id}/try's twin): the job, polled below."""
    data = image.file.read(uploads.MAX_IMAGE_BYTES + 1)
    job = inference.try_image(
        db, settings, user=user, weights_id=weights_id, filename=image.filename or "image",
        data=data, flavor=flavor,
    )  # fmt: skip
    return render(request, "_weights_try.html", {"weights_id": weights_id, "job": job, "rows": []})


@router.get("/weights/{weights_id}/try/{job_id}")
def try_result(
    request: Request, weights_id: int, job_id: int, user: CurrentUser, db: SessionDep,
    settings: SettingsDep,
) -> Response:  # fmt: skip
    """The try's job status and, once done, its predicted class (htmx polls this)."""
    service.get_weights_for_user(db, user, weights_id)
    job, rows = inference.try_result(db, settings, user=user, job_id=job_id)
    return render(
        request, "_weights_try.html", {"weights_id": weights_id, "job": job, "rows": rows}
    )
