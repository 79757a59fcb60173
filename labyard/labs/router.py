"""The labs JSON API: templates, labs, lab files, datasets, parameters, sweeps."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.jobs.grid import check_selection
from labyard.labs import file_service, params, search_submit, service, submit
from labyard.labs.models import Lab
from labyard.labs.schemas import (
    ConfigIn,
    FileContent,
    FileEntryOut,
    FolderOut,
    LabCreate,
    LabDatasetsChanged,
    LabOut,
    LabUpdate,
    MountOut,
    MoveIn,
    ParametersOut,
    PathIn,
    SweepCreate,
    TemplateOut,
)
from labyard.mlsteam import CONFIG_FILE
from labyard.searches.router import search_out
from labyard.searches.schemas import SearchCreate, SearchOut
from labyard.templates_catalog import list_templates
from labyard.web.bodies import MULTIPART_SLACK, streams_body
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["labs"])
PathQuery = Annotated[str, Query(max_length=4096)]


def lab_out(db: Session, settings: Settings, lab: Lab) -> LabOut:
    """The API shape of a lab."""
    return LabOut(
        id=lab.id,
        project_id=lab.project_id,
        name=lab.name,
        template=lab.template,
        flavor=lab.flavor,
        description=lab.description,
        created_at=lab.created_at,
        datasets=[
            MountOut(
                dataset_id=m.dataset.id,
                name=m.dataset.name,
                public=m.dataset.is_public,
                mount_path=m.mount_path,
            )
            for m in service.mounts(settings, lab)
        ],
        job_counts=service.job_counts(db, [lab.id])[lab.id],
    )


@router.get("/templates", response_model=list[TemplateOut])
def templates(_user: CurrentUser) -> list[TemplateOut]:
    """The lab templates."""
    return [
        TemplateOut(
            name=t.name,
            title=t.title,
            description=t.description,
            default_datasets=list(t.default_datasets),
            default_flavor=t.default_flavor,
        )
        for t in list_templates()
    ]


@router.get("/labs", response_model=list[LabOut])
def list_labs(
    user: CurrentUser, db: SessionDep, settings: SettingsDep, project_id: int | None = None
) -> list[LabOut]:
    """The labs of one project, or of every project I can see."""
    return [
        lab_out(db, settings, lab) for lab in service.list_labs(db, user, project_id=project_id)
    ]


@router.post("/labs", response_model=LabOut, status_code=201)
def create_lab(body: LabCreate, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> LabOut:
    """Create a lab (WRITE on the project): blank, or from `template`."""
    lab = service.create_lab(
        db,
        settings,
        user,
        project_id=body.project_id,
        name=body.name,
        template=body.template,
        flavor=body.flavor,
        description=body.description,
    )
    return lab_out(db, settings, lab)


@router.get("/labs/{lab_id}", response_model=LabOut)
def get_lab(lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> LabOut:
    """One lab (READ)."""
    return lab_out(db, settings, service.get_lab(db, user, lab_id))


@router.patch("/labs/{lab_id}", response_model=LabOut)
def update_lab(
    lab_id: int, body: LabUpdate, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> LabOut:
    """Change the lab's default flavor or description (WRITE)."""
    lab = service.update_lab(db, user, lab_id, flavor=body.flavor, description=body.description)
    return lab_out(db, settings, lab)


@router.delete("/labs/{lab_id}", status_code=204)
def delete_lab(lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> None:
    """Delete the lab and its files (WRITE); its jobs stay."""
    service.delete_lab(db, settings, user, lab_id)


# ---------------------------------------------------------------- files


@router.get("/labs/{lab_id}/files", response_model=FolderOut)
def list_files(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep, path: PathQuery = ""
) -> FolderOut:
    """A folder of the lab (READ)."""
    rel, entries = file_service.list_files(db, user, settings, lab_id, path)
    return FolderOut(path=rel, entries=[FileEntryOut(**e.__dict__) for e in entries])


@router.get("/labs/{lab_id}/files/content", response_model=FileContent)
def read_file(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep, path: PathQuery
) -> FileContent:
    """A text file's content (READ)."""
    return FileContent(path=path, content=file_service.read_text(db, user, settings, lab_id, path))


@router.put("/labs/{lab_id}/files/content", response_model=FileContent)
def write_file(
    lab_id: int, body: FileContent, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> FileContent:
    """Create or overwrite a text file (WRITE); mlsteam.yml must be valid."""
    rel = file_service.write_text(db, user, settings, lab_id, body.path, body.content)
    return FileContent(path=rel, content=body.content)


@router.post("/labs/{lab_id}/files", response_model=PathIn, status_code=201)
@streams_body(lambda settings: settings.lab_max_upload_bytes + MULTIPART_SLACK)
def upload_file(
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File()],
    path: Annotated[str, Form(max_length=4096)] = "",
) -> PathIn:
    """Upload a file to `path` (a file path, or a folder ending in '/') (WRITE)."""
    filename = file.filename or "upload"
    rel = file_service.upload(db, user, settings, lab_id, path, filename, file.file)
    return PathIn(path=rel)


@router.post("/labs/{lab_id}/folders", response_model=PathIn, status_code=201)
def make_folder(
    lab_id: int, body: PathIn, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> PathIn:
    """Create a folder (WRITE)."""
    return PathIn(path=file_service.make_folder(db, user, settings, lab_id, body.path))


@router.post("/labs/{lab_id}/files/move", response_model=PathIn)
def move_file(
    lab_id: int, body: MoveIn, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> PathIn:
    """Rename or move a file or folder (WRITE)."""
    new_path = file_service.rename(db, user, settings, lab_id, body.path, body.new_path)
    return PathIn(path=new_path)


@router.delete("/labs/{lab_id}/files", status_code=204)
def delete_file(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep, path: PathQuery
) -> None:
    """Delete a file or folder (WRITE)."""
    file_service.delete(db, user, settings, lab_id, path)


# ---------------------------------------------------------------- config, datasets, params


@router.get("/labs/{lab_id}/config", response_model=ConfigIn)
def read_config(lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep) -> ConfigIn:
    """The raw mlsteam.yml (READ)."""
    return ConfigIn(content=file_service.read_text(db, user, settings, lab_id, CONFIG_FILE))


@router.put("/labs/{lab_id}/config", response_model=ConfigIn)
def write_config(
    lab_id: int, body: ConfigIn, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> ConfigIn:
    """Replace mlsteam.yml (WRITE); refused with the line and reason when invalid."""
    file_service.write_text(db, user, settings, lab_id, CONFIG_FILE, body.content)
    return body


@router.put("/labs/{lab_id}/datasets/{dataset_id}", response_model=LabDatasetsChanged)
def attach_dataset(
    lab_id: int, dataset_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> LabDatasetsChanged:
    """Attach a dataset of the lab's project, or a public one (WRITE)."""
    lab = service.attach_dataset(db, user, lab_id, dataset_id=dataset_id)
    return _changed(db, settings, lab)


@router.delete("/labs/{lab_id}/datasets/{dataset_id}", response_model=LabDatasetsChanged)
def detach_dataset(
    lab_id: int, dataset_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> LabDatasetsChanged:
    """Detach a dataset (WRITE)."""
    lab = service.detach_dataset(db, user, lab_id, dataset_id=dataset_id)
    return _changed(db, settings, lab)


def _changed(db: Session, settings: Settings, lab: Lab) -> LabDatasetsChanged:
    """The lab after a dataset change, with what it means for a running session."""
    out = lab_out(db, settings, lab).model_dump()
    return LabDatasetsChanged(**out, note=service.dataset_change_note(db, lab.id))


@router.get("/labs/{lab_id}/parameters", response_model=ParametersOut)
def parameters(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> ParametersOut:
    """The parameter form of the lab's mlsteam.yml (READ)."""
    config = file_service.read_config(db, user, settings, lab_id)
    lab = service.get_lab(db, user, lab_id)
    weights = params.weights_choices(db, user, lab.project_id)
    return ParametersOut(
        lab_id=lab_id,
        command=config.command,
        fields=[f.as_json() for f in params.form_fields(config, weights)],
        jobs=check_selection(config, None, limit=settings.max_grid_size).size,
    )


@router.post("/labs/{lab_id}/sweeps", status_code=201)
def create_sweep(
    lab_id: int, body: SweepCreate, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Submit the grid: one job per combination (WRITE); answers the sweep with its jobs."""
    sweep, jobs = submit.submit_lab(
        db, settings, user, lab_id, chosen=body.params, flavor=body.flavor, priority=body.priority
    )
    return submit.sweep_json(sweep, jobs)


@router.post("/labs/{lab_id}/searches", status_code=201, response_model=SearchOut)
def create_search(
    lab_id: int, body: SearchCreate, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> SearchOut:
    """Start a search (WRITE): settings over the file's `search:` block, each param's space
    over the file's; the scheduler samples its trials as jobs (see /api/v1/searches)."""
    search = search_submit.start_search(
        db,
        settings,
        user,
        lab_id,
        overrides=body.search.model_dump(exclude_none=True),
        space=body.space,
        flavor=body.flavor,
    )
    db.flush()
    return search_out(db, search)
