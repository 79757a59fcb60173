"""search list | show | trials | start | stop | resume (the searches API)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from labyard.client.http import Api
from labyard.client.labs import lab_id, parse_params
from labyard.client.output import JsonOpt, command, out, print_json, show

COLUMNS = ["id", "display_name", "state", "trials", "counts", "best"]
TRIAL_COLUMNS = ["number", "job_id", "job_status", "state", "value", "params"]
SearchArg = Annotated[int, typer.Argument(help="The search's id.")]
search_app = typer.Typer(help="Searches: Optuna chooses the trials.", no_args_is_help=True)


def add_commands(app: typer.Typer) -> None:
    """Add the search commands to `app`."""
    app.add_typer(search_app, name="search")


def _best(search: dict[str, Any]) -> dict[str, Any]:
    best = search.get("best")
    shown = f"{best['value']:.4g} (job {best['job_id']})" if best else ""
    return {**search, "best": shown}


@command(search_app, "list")
def list_searches(
    lab: Annotated[str | None, typer.Option(help="Only this lab's (id or name).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Searches you can see, newest first."""
    api = Api()
    found = api.get("/api/v1/searches", **({"lab_id": lab_id(api, lab)} if lab else {}))
    show(found if as_json else [_best(s) for s in found], as_json, COLUMNS)


@command(search_app, "show")
def show_search(search: SearchArg, as_json: JsonOpt = False) -> None:
    """A search: state, trial counts, best trial."""
    found = Api().get(f"/api/v1/searches/{search}")
    show(found if as_json else _best(found), as_json, [*COLUMNS, "settings", "reason"])


@command(search_app, "trials")
def trials(search: SearchArg, as_json: JsonOpt = False) -> None:
    """A search's trials with their params and values."""
    show(Api().get(f"/api/v1/searches/{search}/trials"), as_json, TRIAL_COLUMNS)


@command(search_app, "start")
def start(
    lab: Annotated[str, typer.Argument(help="The lab's id or name.")],
    trials: Annotated[int | None, typer.Option(help="Trials in all.")] = None,
    algorithm: Annotated[str | None, typer.Option(help="grid, random, tpe or cmaes.")] = None,
    metric: Annotated[str | None, typer.Option(help="The series to optimise.")] = None,
    goal: Annotated[str | None, typer.Option(help="maximize or minimize.")] = None,
    parallel: Annotated[int | None, typer.Option(help="Trials at once.")] = None,
    early_stopping: Annotated[
        str | None, typer.Option(help="none, asha, hyperband or median.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="name=v1,v2: the choices for a param (repeatable)."),
    ] = None,
    flavor: Annotated[str | None, typer.Option(help="Run on this flavor.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a search from a lab (settings over its mlsteam.yml `search:` block)."""
    settings = {
        "trials": trials,
        "algorithm": algorithm,
        "metric": metric,
        "goal": goal,
        "parallel": parallel,
        "early_stopping": early_stopping,
    }
    space = {
        name: [v.strip() for value in values for v in value.split(",") if v.strip()]
        for name, values in parse_params(param or []).items()
    }
    body = {
        "search": {k: v for k, v in settings.items() if v is not None},
        "space": space,
        "flavor": flavor,
    }
    api = Api()
    found = api.post(f"/api/v1/labs/{lab_id(api, lab)}/searches", body)
    show(found if as_json else _best(found), as_json, COLUMNS)


@command(search_app, "stop")
def stop(search: SearchArg, as_json: JsonOpt = False) -> None:
    """Stop sampling; queued trials stop, running ones get SIGTERM."""
    found = Api().post(f"/api/v1/searches/{search}/stop")
    show(found if as_json else _best(found), as_json, COLUMNS)


@command(search_app, "resume")
def resume(
    search: SearchArg,
    trials: Annotated[int, typer.Option(help="How many more trials.")],
    as_json: JsonOpt = False,
) -> None:
    """Run more trials, keeping every earlier one."""
    found = Api().post(f"/api/v1/searches/{search}/resume", {"trials": trials})
    show(found if as_json else _best(found), as_json, COLUMNS)


@command(search_app, "submit-best")
def submit_best(search: SearchArg, as_json: JsonOpt = False) -> None:
    """Run the best trial's params again as a job."""
    sweep = Api().post(f"/api/v1/searches/{search}/submit-best")
    if as_json:
        print_json(sweep)
    else:
        out.print(f"{sweep['display_name']}: job {', '.join(str(j['id']) for j in sweep['jobs'])}")
