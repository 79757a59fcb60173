"""One lab's tabs: Files, Datasets, Parameters, Config, Jobs (included by labs/pages.py)."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.errors import DomainError, InvalidInput
from labyard.jobs.grid import GridCheck, check_selection
from labyard.jobs.priority import PriorityName
from labyard.labs import file_service, params, service, submit
from labyard.labs.models import Lab
from labyard.mlsteam import CONFIG_FILE, LabConfig, MlsteamError, iter_grid
from labyard.projects.models import PRIORITIES, Role, priority_name
from labyard.projects.service import role_of
from labyard.web import viewer
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import render

router = APIRouter(include_in_schema=False)
PathQuery = Annotated[str, Query(max_length=4096)]
PathForm = Annotated[str, Form(max_length=4096)]
TABS = (
    ("files", "Files"),
    ("datasets", "Datasets"),
    ("parameters", "Parameters"),
    ("config", "Config"),
    ("jobs", "Jobs"),
)
PARAM_PREFIX = "param."
REVIEW_ROWS = 200  # combinations the confirmation lists; it says how many there are in all


def _ctx(
    db: Session, settings: Settings, user: User, lab_id: int, tab: str, need: Role = Role.READ
) -> dict[str, Any]:
    """What every tab shows: the lab, its project, the user's role, attached datasets."""
    lab: Lab = service.get_lab(db, user, lab_id, need)
    return {
        "lab": lab,
        "tab": tab,
        "tabs": TABS,
        "role": role_of(db, user, lab.project_id) or Role.READ,
        "Role": Role,
        "mounts": service.mounts(settings, lab),
        "counts": service.job_counts(db, [lab.id])[lab.id],
    }


# ---------------------------------------------------------------- files


EDITOR_KINDS = ("text", "json")  # shown in the editor; the others in the viewer (Edit opens it)


def _files_ctx(
    db: Session, settings: Settings, user: User, lab_id: int, path: str, file: str, edit: bool
) -> dict[str, Any]:
    ctx = _ctx(db, settings, user, lab_id, "files")
    ctx["folder"], ctx["entries"] = file_service.list_files(db, user, settings, lab_id, path)
    ctx["file"], ctx["content"], ctx["file_error"], ctx["view"] = file, None, None, None
    shown = file or next((e.path for e in ctx["entries"] if e.name.lower() == "readme.md"), "")
    if not shown:
        return ctx
    try:
        view = _lab_view(db, user, settings, lab_id, shown)
        if file and (edit or (view.kind in EDITOR_KINDS and not view.truncated)):
            ctx["content"] = file_service.read_text(db, user, settings, lab_id, file)
        else:
            ctx["view"] = view
    except DomainError as exc:
        ctx["file_error"] = exc.message
    return ctx


def _lab_view(
    db: Session, user: User, settings: Settings, lab_id: int, path: str
) -> viewer.FileView:
    """The viewer's view of one lab file (READ, through the lab's file service)."""
    target = file_service.file_path(db, user, settings, lab_id, path)
    quoted = quote(path, safe="")
    return viewer.view_file(
        target,
        name=path,
        raw_url=f"/labs/{lab_id}/files/raw?path={quoted}",
        download_url=f"/labs/{lab_id}/files/download?path={quoted}",
    )


@router.get("/labs/{lab_id}/files")
def files_tab(
    request: Request,
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathQuery = "",
    file: PathQuery = "",
    edit: bool = False,
) -> Response:
    """The lab's files, the viewer (a folder's README.md when no file is chosen), the editor."""
    ctx = _files_ctx(db, settings, user, lab_id, path, file, edit)
    return render(request, "lab_files.html", ctx)


@router.get("/labs/{lab_id}/files/raw")
def raw_file(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep, path: PathQuery
) -> Response:
    """A lab image's bytes for the viewer (other files: download them)."""
    return viewer.inline_image(file_service.file_path(db, user, settings, lab_id, path))


@router.get("/labs/{lab_id}/files/download")
def download_file(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep, path: PathQuery
) -> Response:
    """One lab file as an attachment (READ)."""
    target = file_service.file_path(db, user, settings, lab_id, path)
    return FileResponse(target, filename=target.name, content_disposition_type="attachment")


def _after_change(lab_id: int, folder: str, file: str = "") -> Response:
    query = f"?path={folder}" + (f"&file={file}" if file else "")
    return Response(status_code=204, headers={"HX-Redirect": f"/labs/{lab_id}/files{query}"})


@router.post("/labs/{lab_id}/files/save")
def save_file(
    request: Request,
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathForm,
    content: Annotated[str, Form()] = "",
) -> Response:
    """Save the editor's text; answers a small status line."""
    rel = file_service.write_text(db, user, settings, lab_id, path, content)
    return render(request, "lab_files.html", {"saved": rel}, block="save_status")


@router.post("/labs/{lab_id}/files/new")
def new_entry(
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    name: PathForm,
    folder: PathForm = "",
    kind: Annotated[str, Form()] = "file",
) -> Response:
    """Create an empty file (opened in the editor) or a folder."""
    target = f"{folder.strip('/')}/{name}" if folder.strip("/") else name
    if kind == "folder":
        file_service.make_folder(db, user, settings, lab_id, target)
        return _after_change(lab_id, folder)
    rel = file_service.create_file(db, user, settings, lab_id, target)
    return _after_change(lab_id, folder, rel)


@router.post("/labs/{lab_id}/files/rename")
def rename_entry(
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathForm,
    new_path: PathForm,
    folder: PathForm = "",
) -> Response:
    """Rename or move a file or folder."""
    file_service.rename(db, user, settings, lab_id, path, new_path)
    return _after_change(lab_id, folder)


@router.post("/labs/{lab_id}/files/delete")
def delete_entry(
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    path: PathForm,
    folder: PathForm = "",
) -> Response:
    """Delete a file or folder after the page's confirmation."""
    file_service.delete(db, user, settings, lab_id, path)
    return _after_change(lab_id, folder)


# ---------------------------------------------------------------- datasets


@router.get("/labs/{lab_id}/datasets")
def datasets_tab(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Attached datasets with their mount points; attach by name."""
    return render(request, "lab_datasets.html", _ctx(db, settings, user, lab_id, "datasets"))


@router.get("/labs/{lab_id}/datasets/suggest")
def suggest_datasets(
    request: Request,
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    name: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Names for the attach field's suggestions."""
    found = service.dataset_suggestions(db, user, lab_id, prefix=name)
    return render(request, "lab_datasets.html", {"suggestions": found}, block="suggestions")


@router.post("/labs/{lab_id}/datasets")
def attach_dataset(
    request: Request,
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=100)],
) -> Response:
    """Attach the dataset called `name`."""
    service.attach_dataset_by_name(db, user, lab_id, name=name)
    ctx = _ctx(db, settings, user, lab_id, "datasets")
    ctx["note"] = service.dataset_change_note(db, lab_id)  # a running session's mounts
    return render(request, "lab_datasets.html", ctx, block="attached")


@router.post("/labs/{lab_id}/datasets/{dataset_id}/detach")
def detach_dataset(
    request: Request,
    lab_id: int,
    dataset_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Detach a dataset."""
    service.detach_dataset(db, user, lab_id, dataset_id=dataset_id)
    ctx = _ctx(db, settings, user, lab_id, "datasets")
    ctx["note"] = service.dataset_change_note(db, lab_id)  # a running session's mounts
    return render(request, "lab_datasets.html", ctx, block="attached")


# ---------------------------------------------------------------- parameters


def priority_choice(value: object) -> PriorityName | None:
    """The review form's priority (None: the project's default); InvalidInput otherwise."""
    if value in (None, ""):
        return None
    if value not in PRIORITIES:
        raise InvalidInput("Priority is low, normal or high.", field="priority")
    return cast(PriorityName, value)


def chosen_params(form: Any) -> dict[str, list[str]]:
    """The form's param fields as {name: [raw values]}."""
    chosen: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if key.startswith(PARAM_PREFIX) and isinstance(value, str):
            chosen.setdefault(key[len(PARAM_PREFIX) :], []).append(value)
    return chosen


@router.get("/labs/{lab_id}/parameters")
def parameters_tab(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The form built from mlsteam.yml, the job count, "Submit Job"."""
    ctx = _ctx(db, settings, user, lab_id, "parameters")
    ctx["config_error"], ctx["fields"], ctx["jobs"] = None, [], 0
    try:
        config = file_service.read_config(db, user, settings, lab_id)
    except InvalidInput as exc:
        ctx["config_error"] = exc.message
        return render(request, "lab_parameters.html", ctx)
    check = check_selection(config, None, limit=settings.max_grid_size)
    weights = params.weights_choices(db, user, ctx["lab"].project_id)
    ctx["config"], ctx["fields"] = config, params.form_fields(config, weights)
    ctx["search"] = params.search_form(config)
    ctx["jobs"], ctx["errors"], ctx["too_many"] = check.size, {}, check.too_many
    return render(request, "lab_parameters.html", ctx)


async def _checked_form(
    request: Request, db: Session, settings: Settings, user: User, lab_id: int
) -> tuple[Lab, LabConfig, GridCheck]:
    """The form's selection through the one grid validator (WRITE), off the event loop."""
    chosen = chosen_params(await request.form())
    check = submit.check_lab_grid
    return await run_in_threadpool(check, db, settings, user, lab_id, chosen=chosen)


@router.post("/labs/{lab_id}/parameters/count")
async def count_jobs(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """ "N jobs will be created" for the form as it is, with each field's error, or why
    the grid is too large (its size comes from the value counts; nothing is expanded)."""
    _lab, config, check = await _checked_form(request, db, settings, user, lab_id)
    ctx = {
        "jobs": check.size,
        "errors": check.errors,
        "too_many": check.too_many,
        "fields": params.form_fields(config),
        "fragment": True,
    }
    return render(request, "lab_parameters.html", ctx, block="count")


@router.post("/labs/{lab_id}/parameters/review")
async def review(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The confirmation: the first combinations, their number and the flavor to run them on."""
    lab, _config, check = await _checked_form(request, db, settings, user, lab_id)
    grid = check.require()
    ctx = {
        "lab": lab,
        "flavors": await run_in_threadpool(service.flavor_choices, db, settings),
        "jobs": check.size,
        "combinations": list(itertools.islice(iter_grid(grid), REVIEW_ROWS)),
        "default_priority": priority_name(lab.project.default_priority),
    }
    return render(request, "lab_parameters.html", ctx, block="review")


@router.post("/labs/{lab_id}/sweeps")
async def submit_sweep(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Create the sweep (one job per combination) and go to the lab's jobs."""
    form = await request.form()
    flavor, priority = form.get("flavor"), form.get("priority")
    await run_in_threadpool(
        submit.submit_lab,
        db,
        settings,
        user,
        lab_id,
        chosen=chosen_params(form),
        flavor=flavor if isinstance(flavor, str) and flavor else None,
        priority=priority_choice(priority),
    )
    return Response(status_code=204, headers={"HX-Redirect": f"/labs/{lab_id}/jobs"})


# ---------------------------------------------------------------- config, jobs


@router.get("/labs/{lab_id}/config")
def config_tab(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """The raw mlsteam.yml editor."""
    ctx = _ctx(db, settings, user, lab_id, "config")
    try:
        ctx["content"] = file_service.read_text(db, user, settings, lab_id, CONFIG_FILE)
    except DomainError:
        ctx["content"] = ""
    return render(request, "lab_config.html", ctx)


@router.post("/labs/{lab_id}/config")
def save_config(
    request: Request,
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    content: Annotated[str, Form()] = "",
) -> Response:
    """Save mlsteam.yml; an invalid file is refused with its line and reason, inline."""
    try:
        file_service.write_text(db, user, settings, lab_id, CONFIG_FILE, content)
    except MlsteamError as exc:
        ctx = {"error": exc.message, "line": exc.line}
        # 200: an inline form error, not a failed request (the fragment says what is wrong)
        return render(request, "lab_config.html", ctx, block="result")
    return render(request, "lab_config.html", {"saved": True}, block="result")


@router.get("/labs/{lab_id}/jobs")
def jobs_tab(
    request: Request, lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """This lab's sweeps and jobs."""
    ctx = _ctx(db, settings, user, lab_id, "jobs")
    ctx["sweeps"] = submit.lab_sweeps(db, user, ctx["lab"])
    return render(request, "lab_jobs.html", ctx)
