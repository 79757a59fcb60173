""" "Save as dataset": a finished job's output (or a folder of it) becomes a dataset of the
job's project. The job page's form (Files tab, `router`) and its JSON twin (`api`, listed in
OpenAPI) call the same service, labyard.jobs.output_dataset; create_app includes both, as
it does for every module of API_MODULES / PAGE_MODULES."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response
from pydantic import BaseModel, Field

from labyard.datasets.insight import InsightOut
from labyard.datasets.schemas import DatasetOut, dataset_out
from labyard.jobs.output_dataset import save_output_as_dataset
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["jobs"])
NAME_FIELD = Field(max_length=100, description="The new dataset's name (unique in the project)")
PATH_FIELD = Field(
    default="",
    max_length=4096,
    description="A folder inside the job's output, e.g. `dataset` ('' = the whole output)",
)


class OutputDatasetIn(BaseModel):
    """Which part of the output becomes which dataset."""

    name: str = NAME_FIELD
    path: str = PATH_FIELD


class OutputDatasetOut(BaseModel):
    """The new dataset and its insight."""

    dataset: DatasetOut
    insight: InsightOut


@api.post("/jobs/{job_id}/output-as-dataset", response_model=OutputDatasetOut, status_code=201)
def output_as_dataset_api(
    job_id: int, body: OutputDatasetIn, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> OutputDatasetOut:
    """Copy a finished job's output (or the folder `path` of it) into a new dataset of the
    job's project (WRITE). 409: the job has not finished, or the name is taken; 422: the
    folder holds links or special files; 413: the project's dataset quota."""
    saved = save_output_as_dataset(
        db, settings, user=user, job_id=job_id, name=body.name, path=body.path
    )
    return OutputDatasetOut(dataset=dataset_out(saved.dataset), insight=saved.insight)


@router.post("/jobs/{job_id}/output-as-dataset")
def output_as_dataset_page(
    job_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=100)],
    path: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    """The job page's "Save as dataset": make the dataset, then open its page."""
    saved = save_output_as_dataset(db, settings, user=user, job_id=job_id, name=name, path=path)
    return Response(status_code=204, headers={"HX-Redirect": f"/datasets/{saved.dataset.id}"})
