"""jobs [--watch], logs [-f], metrics, download, stop, tensorboard."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.live import Live

from labyard.client.http import Api, ApiError
from labyard.client.output import JsonOpt, command, err, out, print_json, show, table

JOB_COLUMNS = ["id", "display_name", "status", "flavor", "progress_line", "elapsed_seconds"]
JobArg = Annotated[int, typer.Argument(help="The job's id.")]
WATCH_SECONDS = 2.0


def add_commands(app: typer.Typer) -> None:
    """Add the job commands to `app`."""
    for fn in (jobs, logs, metrics, download, stop, tensorboard):
        command(app)(fn)


def is_final(job: dict[str, Any]) -> bool:
    """A job that will not change any more (the API sets finished_at when it ends)."""
    return job.get("finished_at") is not None


def jobs(
    project: Annotated[str | None, typer.Option(help="Only this project's (id or name).")] = None,
    lab: Annotated[int | None, typer.Option(help="Only this lab's.")] = None,
    sweep: Annotated[int | None, typer.Option(help="Only this sweep's (or search's).")] = None,
    status: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh until every job shown has ended.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Your jobs, newest first."""
    api = Api()
    params: dict[str, Any] = {"lab_id": lab, "sweep_id": sweep, "status": status, "limit": limit}
    if project:
        params["project_id"] = api.find_id("/api/v1/projects", project, "project")
    params = {k: v for k, v in params.items() if v is not None}
    found = api.get("/api/v1/jobs", **params)
    if watch and not as_json:
        with Live(table(found, JOB_COLUMNS), console=out, auto_refresh=False) as live:
            while not all(is_final(j) for j in found):
                time.sleep(WATCH_SECONDS)
                found = api.get("/api/v1/jobs", **params)
                live.update(table(found, JOB_COLUMNS), refresh=True)
        return
    while watch and not all(is_final(j) for j in found):
        time.sleep(WATCH_SECONDS)
        found = api.get("/api/v1/jobs", **params)
    show(found, as_json, JOB_COLUMNS)


def logs(
    job: JobArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow until it ends.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The job's log (with -f: as it is written, until the job ends)."""
    api = Api()
    if not follow:
        response = api.send("GET", f"/api/v1/jobs/{job}/logs")
        if as_json:
            offset = int(response.headers.get("x-log-offset", len(response.content)))
            print_json({"job_id": job, "offset": offset, "text": response.text})
        else:
            sys.stdout.buffer.write(response.content)
        return
    params = {"follow": "true"}
    with api.stream("GET", f"/api/v1/jobs/{job}/logs", params=params, timeout=None) as response:
        for data in response.iter_bytes():
            if as_json:
                print_json({"job_id": job, "text": data.decode("utf-8", "replace")})
            else:
                sys.stdout.buffer.write(data)
                sys.stdout.flush()
    ended = api.get(f"/api/v1/jobs/{job}")
    if not as_json:
        err.print(f"job {job} {ended['status']}")


def metrics(
    job: JobArg,
    name: Annotated[str | None, typer.Option(help="One series' points.")] = None,
    points: Annotated[int, typer.Option(help="Downsample the series to this many.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """The job's metric series, or one series' points."""
    api = Api()
    if name is None:
        data = api.get(f"/api/v1/jobs/{job}/metrics")
        show(data if as_json else data["series"], as_json, ["name", "x_name", "points"])
        return
    data = api.get(f"/api/v1/jobs/{job}/metrics", name=name, points=points)
    rows = [{"x": x, name: y} for x, y in data["points"]]
    show(data if as_json else rows, as_json, ["x", name])


def _chosen(files: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """The output files at `path`: that file, or everything under that folder."""
    path = path.strip("/")
    return [f for f in files if not path or f["path"] == path or f["path"].startswith(path + "/")]


def download(
    job: JobArg,
    path: Annotated[str, typer.Argument(help="A file or folder of its output.")] = "",
    dest: Annotated[Path | None, typer.Option(help="Where to save (default: ./job-<id>).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the job's output files (all of them, or those at PATH)."""
    api = Api()
    listing = api.get(f"/api/v1/jobs/{job}/files")
    chosen = _chosen(listing["files"], path)
    if path and not chosen:
        raise ApiError(f"job {job} has no output file or folder {path!r}")
    folder = dest or Path(f"job-{job}")
    for item in chosen:
        target = folder.joinpath(*item["path"].split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        with (
            api.stream("GET", f"/api/v1/jobs/{job}/files/{quote(item['path'])}") as response,
            part.open("wb") as fh,
        ):
            for data in response.iter_bytes():
                fh.write(data)
        part.replace(target)
    if as_json:
        print_json({"files": chosen, "truncated": listing["truncated"]})
    else:
        err.print(f"Downloaded {len(chosen)} files into {folder}.")


def stop(job: JobArg, as_json: JsonOpt = False) -> None:
    """Stop a job (SIGTERM, then SIGKILL after the grace period)."""
    show(Api().post(f"/api/v1/jobs/{job}/stop"), as_json, ["id", "status", "stop_requested"])


def tensorboard(job: JobArg, as_json: JsonOpt = False) -> None:
    """Start (or reuse) the job's TensorBoard and print its URL."""
    api = Api()
    instance = api.post("/api/v1/tensorboards", {"job_ids": [job]})
    if as_json:
        print_json(instance)
    else:
        out.print(api.url + instance["url"], soft_wrap=True)
