"""The DeepHealth back-end's REST API, mounted at /backend as an application of its own (its
clients need DeepHealth's error shapes, bare lists and its slash rules; Labyard's pages and
/api/v1 keep theirs). Routes parse and call labyard.deephealth's services; every permission
is checked by the domain services below them.

Resource paths answer with and without a trailing slash; the plain views (`train`, `status`,
`stopProcess`, `output`) only without one, as DeepHealth's router does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.deephealth import errors, fixtures, processes, service, weights
from labyard.deephealth.auth import BearerUser
from labyard.deephealth.errors import refused
from labyard.deephealth.schemas import (
    InferenceBody,
    ProcessBody,
    ProjectBody,
    SingleInferenceBody,
    TrainBody,
)
from labyard.errors import NotFound
from labyard.web.deps import SessionDep, SettingsDep

router = APIRouter()
Endpoint = Callable[..., Any]


def resource(
    path: str, methods: list[str], status_code: int = 200
) -> Callable[[Endpoint], Endpoint]:
    """Register an endpoint at `path` and `path/` (the second left out of the schema)."""

    def register(fn: Endpoint) -> Endpoint:
        for method in methods:  # one route per method: each its own operation id
            router.add_api_route(path, fn, methods=[method], status_code=status_code)
            router.add_api_route(
                path + "/", fn, methods=[method], status_code=status_code, include_in_schema=False
            )
        return fn

    return register


Deleter = Callable[[Session, Settings, User, int], None]


def deleting(path: str, delete: Deleter, doc: str) -> None:
    """A DELETE route at `path` (its id `{item_id}`): `delete` checks and removes, 204."""

    def endpoint(item_id: int, user: BearerUser, db: SessionDep, settings: SettingsDep) -> Response:
        delete(db, settings, user, item_id)
        return Response(status_code=204)

    endpoint.__name__ = endpoint.__qualname__ = f"delete_{path.strip('/').split('/')[0]}"
    endpoint.__doc__ = doc
    resource(path + "/{item_id}", ["DELETE"], status_code=204)(endpoint)


def _int(value: str | None, name: str, *, required: bool = False) -> int | None:
    """A query parameter as an int; DeepHealth's 400 when it is missing or no number."""
    if value is None or value == "":
        if required:
            raise refused(f"Missing required parameter `{name}`")
        return None
    try:
        return int(value)
    except ValueError:
        raise refused(f"Parameter `{name}` must be an integer") from None


def _required(value: str | None, name: str) -> int:
    number = _int(value, name, required=True)
    assert number is not None
    return number


# ---------------------------------------------------------------- fixed tables


@resource("/tasks", ["GET"])
def list_tasks(user: BearerUser) -> list[dict[str, object]]:
    """Classification and Segmentation."""
    return list(fixtures.TASKS)


@resource("/tasks/{task_id}", ["GET"])
def get_task(task_id: int, user: BearerUser) -> dict[str, object]:
    """One task."""
    found = next((t for t in fixtures.TASKS if t["id"] == task_id), None)
    if found is None:
        raise NotFound("No such task.")
    return found


@resource("/models", ["GET"])
def list_models(user: BearerUser, task_id: str | None = None) -> list[dict[str, object]]:
    """The templates' networks, of one task or all."""
    return service.list_models(_int(task_id, "task_id"))


@resource("/properties", ["GET"])
def list_properties(user: BearerUser, name: str | None = None) -> list[dict[str, object]]:
    """The hyper-parameters."""
    return service.list_properties(name)


@resource("/properties/{property_id}", ["GET"])
def get_property(property_id: int, user: BearerUser) -> dict[str, object]:
    """One hyper-parameter."""
    return service.get_property(property_id)


@resource("/allowedProperties", ["GET"])
def allowed_properties(
    user: BearerUser,
    db: SessionDep,
    model_id: str | None = None,
    property_id: str | None = None,
    dataset_id: str | None = None,
) -> list[dict[str, object]]:
    """A model's (and dataset's) default and allowed values of one property."""
    return service.allowed_properties(
        db,
        model_id=_required(model_id, "model_id"),
        property_id=_required(property_id, "property_id"),
        dataset_id=_int(dataset_id, "dataset_id"),
    )


@resource("/models", ["POST"])
@resource("/allowedProperties", ["POST"])
@resource("/allowedProperties/{row_id}", ["PUT", "PATCH"])
def change_fixed(user: BearerUser) -> None:
    """Models, tasks and properties are fixed here."""
    raise service.read_only("Models and properties")


# ---------------------------------------------------------------- datasets and weights


@resource("/datasets", ["GET"])
def list_datasets(
    user: BearerUser, db: SessionDep, settings: SettingsDep, task_id: str | None = None
) -> list[dict[str, Any]]:
    """Public datasets and the caller's projects' ones."""
    return service.list_datasets(db, settings, user, task_id=_int(task_id, "task_id"))


@resource("/datasets", ["POST"])
def create_dataset(user: BearerUser) -> None:
    """Datasets are uploaded on Labyard's Datasets page (or its API)."""
    raise refused("Upload datasets on Labyard's Datasets page or with /api/v1/datasets.", 403)


@resource("/datasets/{dataset_id}", ["GET"])
def get_dataset(
    dataset_id: int, user: BearerUser, db: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """One dataset."""
    return service.get_dataset(db, settings, user, dataset_id)


@resource("/weights", ["GET"])
def list_weights(
    user: BearerUser, db: SessionDep, model_id: str | None = None, dataset_id: str | None = None
) -> list[dict[str, object]]:
    """A model's weights usable on a dataset: from scratch, and the registered ones."""
    return weights.list_weights(
        db,
        user,
        model_id=_required(model_id, "model_id"),
        dataset_id=_int(dataset_id, "dataset_id"),
    )


@resource("/weights/{weight_id}", ["GET"])
def get_weight(weight_id: int, user: BearerUser, db: SessionDep) -> dict[str, object]:
    """One weights row the caller can read."""
    found = weights.get_weight(db, user, weight_id)
    if found is None:
        raise NotFound("No such weights.")
    return found.json()


deleting("/datasets", service.delete_dataset, "Delete a dataset of one of the caller's projects.")
deleting("/weights", weights.delete_weight, "Delete registered weights (refused while used).")
deleting("/projects", service.delete_project, "Delete a project (OWN).")


@resource("/weights", ["POST"])
@resource("/weights/{weight_id}", ["PUT", "PATCH"])
def change_weights(user: BearerUser) -> None:
    """Weights are registered from a finished job and edited on Labyard's Weights page."""
    raise refused(
        "Register weights from a finished job (its page, or POST /api/v1/weights) and edit "
        "them on Labyard's Weights page.",
        403,
    )


@router.get("/weightsDownload")
def weights_download(
    user: BearerUser, db: SessionDep, settings: SettingsDep, modelweights_id: str | None = None
) -> FileResponse:
    """The ONNX file of registered weights."""
    name, path = weights.download(db, settings, user, _required(modelweights_id, "modelweights_id"))
    return FileResponse(path, filename=name, media_type="application/octet-stream")


# ---------------------------------------------------------------- projects


@resource("/projects", ["GET"])
def list_projects(user: BearerUser, db: SessionDep) -> list[dict[str, object]]:
    """The caller's projects."""
    return service.list_projects(db, user)


@resource("/projects", ["POST"], status_code=201)
def create_project(
    body: ProjectBody, user: BearerUser, db: SessionDep, settings: SettingsDep
) -> dict[str, object]:
    """A new project with its members and the task's lab."""
    return service.create_project(
        db, settings, user, name=body.name, task_id=body.task_id, users=body.users
    )


@resource("/projects/{project_id}", ["GET"])
def get_project(project_id: int, user: BearerUser, db: SessionDep) -> dict[str, object]:
    """One of the caller's projects."""
    return service.get_project(db, user, project_id)


@resource("/projects/{project_id}", ["PUT", "PATCH"])
def update_project(
    project_id: int, body: ProjectBody, user: BearerUser, db: SessionDep, settings: SettingsDep
) -> dict[str, object]:
    """Rename, set the task, replace the members (OWN)."""
    return service.update_project(
        db, settings, user, project_id, name=body.name, task_id=body.task_id, users=body.users
    )


# ---------------------------------------------------------------- processes


@router.post("/train", status_code=201)
def train(
    body: TrainBody, user: BearerUser, db: SessionDep, settings: SettingsDep
) -> dict[str, object]:
    """Start a training: a Labyard job of the project's DeepHealth lab."""
    return processes.train(db, settings, user, body)


@resource("/trainings", ["GET"])
def trainings(
    user: BearerUser,
    db: SessionDep,
    project_id: str | None = None,
    modelweights_id: str | None = None,
) -> list[dict[str, object]]:
    """The project's trainings."""
    found = processes.trainings(db, user, _required(project_id, "project_id"))
    wanted = _int(modelweights_id, "modelweights_id")
    return [t for t in found if wanted is None or t["modelweights_id"] == wanted]


@resource("/trainingSettings", ["GET"])
def training_settings(
    user: BearerUser,
    db: SessionDep,
    training_id: str | None = None,
    property_id: str | None = None,
) -> list[dict[str, object]]:
    """The properties a training ran with."""
    return processes.training_settings(
        db, user, _required(training_id, "training_id"), _int(property_id, "property_id")
    )


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@router.get("/status")
def status(
    user: BearerUser,
    db: SessionDep,
    settings: SettingsDep,
    process_id: str | None = None,
    full: str = "false",
) -> dict[str, object]:
    """A process's state and progress."""
    if not process_id:
        raise errors.DeepHealthError(400, {"process_id": ["This field is required."]})
    if full.lower() not in _BOOLEANS:
        raise errors.DeepHealthError(400, {"full": ["Must be a valid boolean."]})
    return processes.status(db, settings, user, process_id, full=_BOOLEANS[full.lower()])


@router.post("/stopProcess")
def stop_process(body: ProcessBody, user: BearerUser, db: SessionDep) -> dict[str, object]:
    """Stop a process."""
    return processes.stop(db, user, body.process_id)


@router.get("/output")
def output(
    user: BearerUser, db: SessionDep, settings: SettingsDep, process_id: str | None = None
) -> dict[str, object]:
    """A process's output files."""
    if not process_id:
        raise refused("Missing required parameter `process_id`")
    return processes.output(db, settings, user, process_id)


@router.get("/inference")
@router.get("/inferenceSingle")
def list_inferences(
    user: BearerUser, db: SessionDep, project_id: str | None = None
) -> list[dict[str, object]]:
    """The project's inferences."""
    return processes.inferences(db, user, _required(project_id, "project_id"))


@router.post("/inference", status_code=201)
def start_inference(
    body: InferenceBody, user: BearerUser, db: SessionDep, settings: SettingsDep
) -> dict[str, object]:
    """Run registered weights over a dataset: a Labyard inference job."""
    return processes.start_inference(db, settings, user, body)


@router.post("/inferenceSingle", status_code=201)
def start_single_inference(
    body: SingleInferenceBody, user: BearerUser, db: SessionDep, settings: SettingsDep
) -> dict[str, object]:
    """Run registered weights on one image: the weights' "try one image" job."""
    return processes.start_single_inference(db, settings, user, body)


@router.get("/weightsStatus")
def weights_status(user: BearerUser, process_id: str | None = None) -> Response:
    """Weights come from finished jobs here, never from a URL download: no process to report."""
    if not process_id:
        raise refused("Missing required parameter `process_id`")
    raise errors.DeepHealthError(
        404, {"result": "Process stopped before finishing or non existing."}
    )


@router.get("/")
def api_root(request: Request, user: BearerUser) -> dict[str, str]:
    """DRF's API root: each resource's URL."""
    base = str(request.base_url).rstrip("/") + str(request.scope.get("root_path", ""))
    names = ("allowedProperties", "datasets", "models", "projects", "properties", "tasks")
    return {name: f"{base}/{name}" for name in (*names, "trainings", "trainingSettings", "weights")}
