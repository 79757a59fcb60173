"""weights (list), weights register JOB --name N [--path P], weights download ID [DEST];
infer WEIGHTS_ID (--dataset ID [--path P] | IMAGE...) [--flavor F] (an inference job)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from labyard.client.config import NotLoggedIn
from labyard.client.http import Api, ApiError
from labyard.client.output import JsonOpt, command, err, human_bytes, print_json, show

COLUMNS = ["id", "name", "project_id", "format", "task", "classes", "source_job_id", "parent_id"]
JOB_COLUMNS = ["id", "display_name", "status", "flavor", "project_id"]
DETAIL = [*COLUMNS, "framework", "input_shape", "metrics", "files", "size_bytes", "is_public"]

weights_app = typer.Typer(
    help="Registered weights: list (no command), register a job's model, download.",
    invoke_without_command=True,
)


def add_commands(app: typer.Typer) -> None:
    """Add the weights commands to `app`."""
    app.add_typer(weights_app, name="weights")
    command(app, "infer")(infer)


def infer(
    weights_id: Annotated[int, typer.Argument(metavar="WEIGHTS_ID", help="The weights' id.")],
    images: Annotated[
        list[Path] | None,
        typer.Argument(help="Image files to upload and run on (instead of --dataset)."),
    ] = None,
    dataset: Annotated[int | None, typer.Option(help="The dataset's id (READ).")] = None,
    path: Annotated[str, typer.Option(help="Only this file or folder of the dataset.")] = "",
    flavor: Annotated[str, typer.Option(help="The job's flavor.")] = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Run the weights over a dataset, or over image files uploaded with the request, as a
    job (predictions.csv in its output); print it."""
    if (dataset is None) == (not images):
        raise ApiError("give either --dataset ID or image files")
    if dataset is not None:
        body = {"dataset_id": dataset, "path": path, "flavor": flavor}
        show(Api().post(f"/api/v1/weights/{weights_id}/inference", body), as_json, JOB_COLUMNS)
        return
    with contextlib.ExitStack() as stack:
        try:
            parts = [("files", (p.name, stack.enter_context(p.open("rb")))) for p in images or []]
        except OSError as exc:
            raise ApiError(f"cannot read {exc.filename}: {exc.strerror}") from None
        response = Api().send(
            "POST",
            f"/api/v1/weights/{weights_id}/inference/uploads",
            files=parts,
            data={"flavor": flavor},
        )
    show(response.json(), as_json, JOB_COLUMNS)


@weights_app.callback()
def weights(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="Only this project's (id or name).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The weights you can read (your projects' and public ones)."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        api = Api()
        params = {}
        if project:
            params["project_id"] = api.find_id("/api/v1/projects", project, "project")
        show(api.get("/api/v1/weights", **params), as_json, COLUMNS)
    except (ApiError, NotLoggedIn) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise typer.Exit(1) from None


@command(weights_app, "register")
def register(
    job: Annotated[int, typer.Argument(help="The finished job's id.")],
    name: Annotated[str, typer.Option(help="The new weights' name.")],
    path: Annotated[str, typer.Option(help="The model in the job's output.")] = "model.onnx",
    description: Annotated[str, typer.Option(help="What they are.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a finished job's model (a copy) as weights of the job's project."""
    body = {"job_id": job, "name": name, "path": path, "description": description}
    show(Api().post("/api/v1/weights", body), as_json, DETAIL)


@command(weights_app, "download")
def download(
    weights_id: Annotated[int, typer.Argument(metavar="ID", help="The weights' id.")],
    dest: Annotated[
        Path | None, typer.Argument(help="A file or an existing folder (default: here).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the weights' file (a SavedModel folder as a zip)."""
    api = Api()
    info = api.get(f"/api/v1/weights/{weights_id}")
    name = info["file_name"] if info["format"] != "savedmodel" else f"{info['name']}.zip"
    target = dest or Path(name)
    if target.is_dir():
        target = target / name
    part = target.with_name(f".{target.name}.part")
    with (
        api.stream("GET", f"/api/v1/weights/{weights_id}/download") as response,
        part.open("wb") as fh,
    ):
        for data in response.iter_bytes():
            fh.write(data)
    part.replace(target)
    size = target.stat().st_size
    if as_json:
        print_json({"path": str(target), "size_bytes": size, "weights": info})
    else:
        err.print(f"Downloaded weights {weights_id} to {target} ({human_bytes(size)}).")
