"""datasets, dataset create, dataset upload (small files in multipart batches, large ones
over tus with a progress bar, resumed after an interruption)."""

from __future__ import annotations

import functools
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from labyard.client.http import Api
from labyard.client.output import JsonOpt, command, err, human_bytes, parse_size, print_json, show
from labyard.client.tus import Upload

COLUMNS = ["id", "name", "project_id", "is_public", "file_count", "size_bytes", "description"]
BATCH_FILES = 100  # files per multipart request
DEFAULT_CHUNK = "64M"

dataset_app = typer.Typer(help="Create datasets and upload files.", no_args_is_help=True)


def add_commands(app: typer.Typer) -> None:
    """Add the dataset commands to `app`."""
    command(app)(datasets)
    app.add_typer(dataset_app, name="dataset")


def datasets(
    project: Annotated[str | None, typer.Option(help="Only this project's (id or name).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The datasets you can read (your projects' and public ones)."""
    api = Api()
    params = {"project_id": api.find_id("/api/v1/projects", project, "project")} if project else {}
    show(api.get("/api/v1/datasets", **params), as_json, COLUMNS)


@command(dataset_app, "create")
def create(
    name: Annotated[str, typer.Argument(help="The new dataset's name.")],
    project: Annotated[str, typer.Option(help="The project (id or name).")],
    description: Annotated[str, typer.Option(help="What it holds.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an empty dataset in a project."""
    api = Api()
    project_id = api.find_id("/api/v1/projects", project, "project")
    body = {"name": name, "project_id": project_id, "description": description}
    show(api.post("/api/v1/datasets", body), as_json, COLUMNS)


def local_files(path: Path) -> list[tuple[Path, str]]:
    """(file, name in the dataset) for a file, or for every file of a folder (kept under
    the folder's own name, as a dropped folder is)."""
    if path.is_file():
        return [(path, path.name)]
    root = path.resolve()
    return [
        (p, f"{root.name}/{p.relative_to(root).as_posix()}")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def _multipart(
    api: Api, dataset_id: int, folder: str, batch: list[tuple[Path, str]]
) -> list[dict[str, Any]]:
    with ExitStack() as stack:
        parts = [("file", (name, stack.enter_context(p.open("rb")))) for p, name in batch]
        response = api.send(
            "POST", f"/api/v1/datasets/{dataset_id}/files", files=parts, data={"path": folder}
        )
    placed: list[dict[str, Any]] = response.json()
    return placed


def _advance(bar: Progress, task: TaskID, base: int, offset: int) -> None:
    bar.update(task, completed=base + offset)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@command(dataset_app, "upload")
def upload(
    dataset: Annotated[str, typer.Argument(help="The dataset's id or name.")],
    path: Annotated[Path, typer.Argument(help="A file or folder.", exists=True)],
    to: Annotated[str, typer.Option(help="The dataset folder to upload into.")] = "",
    chunk_size: Annotated[
        str, typer.Option(help="Files larger than this go over tus, in chunks this size.")
    ] = DEFAULT_CHUNK,
    extract: Annotated[bool, typer.Option(help="Extract uploaded archives.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Upload a file or folder; large files resume where they stopped when run again."""
    chunk = parse_size(chunk_size)
    api = Api()
    dataset_id = api.find_id("/api/v1/datasets", dataset, "dataset")
    files = local_files(path)
    total = sum(p.stat().st_size for p, _ in files)
    small = [(p, n) for p, n in files if p.stat().st_size <= chunk and not extract]
    large = [(p, n) for p, n in files if (p, n) not in small]
    placed: list[dict[str, Any]] = []
    with _progress() as bar:
        task = bar.add_task(f"dataset {dataset_id}", total=total)
        done = 0
        for start in range(0, len(small), BATCH_FILES):
            batch = small[start : start + BATCH_FILES]
            placed += _multipart(api, dataset_id, to.strip("/"), batch)
            done += sum(p.stat().st_size for p, _ in batch)
            bar.update(task, completed=done)
        for file, name in large:
            job = Upload(
                api, dataset_id, file, folder=to.strip("/"), name=name, chunk=chunk, extract=extract
            )
            job.prepare()
            if job.resumed_at is not None:
                bar.console.print(f"Resuming {file} at byte {job.resumed_at} of {job.length}.")
            placed.append(job.run(functools.partial(_advance, bar, task, done)))
            done += job.length
    if as_json:
        print_json(placed)
    else:
        err.print(f"Uploaded {len(placed)} files ({human_bytes(total)}) to dataset {dataset_id}.")
