"""labs, lab create, lab files pull | push, submit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labyard.client.http import Api
from labyard.client.output import JsonOpt, command, err, print_json, show

LAB_COLUMNS = ["id", "name", "project_id", "template", "flavor", "job_counts"]
JOB_COLUMNS = ["id", "display_name", "status", "params"]

lab_app = typer.Typer(help="Create labs and move their files.", no_args_is_help=True)
files_app = typer.Typer(help="Copy a lab's files to or from this machine.", no_args_is_help=True)
lab_app.add_typer(files_app, name="files")
LabArg = Annotated[str, typer.Argument(help="The lab's id or name.")]


def add_commands(app: typer.Typer) -> None:
    """Add the lab commands to `app`."""
    command(app)(labs)
    command(app)(submit)
    app.add_typer(lab_app, name="lab")


def lab_id(api: Api, value: str) -> int:
    """A lab given by id or name."""
    return api.find_id("/api/v1/labs", value, "lab")


def labs(
    project: Annotated[str | None, typer.Option(help="Only this project's (id or name).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The labs you can see."""
    api = Api()
    params = {"project_id": api.find_id("/api/v1/projects", project, "project")} if project else {}
    show(api.get("/api/v1/labs", **params), as_json, LAB_COLUMNS)


@command(lab_app, "create")
def create(
    name: Annotated[str, typer.Argument(help="The new lab's name.")],
    project: Annotated[str, typer.Option(help="The project (id or name).")],
    template: Annotated[str | None, typer.Option(help="Start from this template.")] = None,
    flavor: Annotated[str | None, typer.Option(help="The lab's default flavor.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a lab, blank or from a template."""
    api = Api()
    body = {
        "name": name,
        "project_id": api.find_id("/api/v1/projects", project, "project"),
        "template": template,
        "flavor": flavor,
    }
    show(api.post("/api/v1/labs", body), as_json, LAB_COLUMNS)


def _walk(api: Api, lab: int, folder: str) -> list[dict[str, Any]]:
    """Every file under a lab's folder (depth first)."""
    found: list[dict[str, Any]] = []
    for entry in api.get(f"/api/v1/labs/{lab}/files", path=folder)["entries"]:
        if entry["type"] == "dir":
            found += _walk(api, lab, entry["path"])
        else:
            found.append(entry)
    return found


@command(files_app, "pull")
def pull(
    lab: LabArg,
    dest: Annotated[Path, typer.Argument(help="The local folder to copy into.")],
    path: Annotated[str, typer.Option(help="Only this folder of the lab.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Copy a lab's files into a local folder."""
    api = Api()
    ident = lab_id(api, lab)
    entries = _walk(api, ident, path)
    for entry in entries:
        target = dest.joinpath(*entry["path"].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        # the lab's binary download (a page route; bearer tokens work there too)
        with (
            api.stream(
                "GET", f"/labs/{ident}/files/download", params={"path": entry["path"]}
            ) as response,
            part.open("wb") as fh,
        ):
            for data in response.iter_bytes():
                fh.write(data)
        part.replace(target)
    if as_json:
        print_json(entries)
    else:
        err.print(f"Copied {len(entries)} files of lab {ident} into {dest}.")


@command(files_app, "push")
def push(
    lab: LabArg,
    src: Annotated[Path, typer.Argument(help="A local file or folder.", exists=True)],
    to: Annotated[str, typer.Option(help="The lab folder to copy into.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Copy a local file, or a folder's contents, into a lab (existing files are replaced)."""
    api = Api()
    ident = lab_id(api, lab)
    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
    base = src if src.is_dir() else src.parent
    placed = []
    for file in files:
        rel = "/".join(filter(None, [to.strip("/"), file.relative_to(base).as_posix()]))
        with file.open("rb") as fh:
            answer = api.send(
                "POST",
                f"/api/v1/labs/{ident}/files",
                files={"file": (file.name, fh)},
                data={"path": rel},
            )
        placed.append(answer.json())
    if as_json:
        print_json(placed)
    else:
        err.print(f"Copied {len(placed)} files into lab {ident}.")


def parse_params(given: list[str]) -> dict[str, list[str]]:
    """`name=v1,v2` options as the grid API takes them (values split on commas there)."""
    chosen: dict[str, list[str]] = {}
    for item in given:
        name, sep, values = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{item!r}: write name=value[,value...]", param_hint="--param")
        chosen.setdefault(name.strip(), []).append(values)
    return chosen


def submit(
    lab: LabArg,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="name=v1,v2: the values to try (repeatable)."),
    ] = None,
    flavor: Annotated[str | None, typer.Option(help="Run on this flavor.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit the lab's parameter grid: one job per combination; prints the jobs."""
    chosen = parse_params(param or [])
    api = Api()
    sweep = api.post(
        f"/api/v1/labs/{lab_id(api, lab)}/sweeps", {"params": chosen, "flavor": flavor}
    )
    if as_json:
        print_json(sweep)
        return
    show(sweep["jobs"], False, JOB_COLUMNS, title=sweep["display_name"])
