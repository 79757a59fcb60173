"""Searches through the real app: start one on a lab holding the fake training script, run
the scheduler until it ends, read it back (state, counts, best, trials, importances, its
jobs), submit its best trial, stop and resume it; and every refused request answers a clear
error naming the field while writing nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from labyard.jobs.models import FINAL_STATUSES, Job, JobStatus
from labyard.jobs.scheduler import Scheduler
from labyard.jobs.service import job_dir
from labyard.mlsteam import parse_mlsteam
from tests.integration.searches.conftest import quality, run_search, snapshot
from tests.integration.searches.world import SearchWorld, field_of, message_of, search_yml

NO_SUCH_SEARCH = 999_999


def _trials(world: SearchWorld, search_id: int) -> list[dict[str, Any]]:
    response = world.get(f"/api/v1/searches/{search_id}/trials")
    assert response.status_code == 200, response.text
    trials: list[dict[str, Any]] = response.json()
    return trials


def _run_job(scheduler: Scheduler, world: SearchWorld, job_id: int) -> Job:
    """Tick until the job ended (a safety timeout, not a timed check)."""
    deadline = time.monotonic() + 120
    while True:
        scheduler.tick()
        with world.database.read_session() as db:
            job = db.get(Job, job_id)
            assert job is not None
            if job.status in FINAL_STATUSES:
                db.expunge(job)
                return job
        assert time.monotonic() < deadline, f"job {job_id} did not end"
        time.sleep(0.05)


def test_a_search_runs_to_the_end_and_reads_back(
    search_world: SearchWorld, search_scheduler
) -> None:
    world = search_world
    lab_id = world.make_lab()
    space = {"lr": {"min": 0.0001, "max": 0.5, "log": True}}  # none diverges (lr > 0.5)
    started = world.start(
        lab_id, {"search": {"trials": 6, "parallel": 2, "seed": 7}, "space": space}
    )
    search_id = started["id"]
    assert started["state"] == "running" and started["trials"] == 6
    assert started["counts"] == dict.fromkeys(
        ("queued", "running", "complete", "pruned", "failed"), 0
    )
    assert started["best"] is None and started["lab_id"] == lab_id
    assert started["settings"]["algorithm"] == "tpe" and started["settings"]["seed"] == 7
    assert started["space"]["lr"]["high"] == 0.5 and started["space"]["lr"]["log"] is True
    assert world.get(f"/api/v1/searches/{search_id}/importances").json() == {}
    refused = world.post(f"/api/v1/searches/{search_id}/submit-best")
    assert refused.status_code == 409 and "No trial has completed" in refused.json()["detail"]

    scheduler = search_scheduler()
    run_search(scheduler, world.database, search_id)

    search = world.get(f"/api/v1/searches/{search_id}").json()
    assert search["state"] == "finished" and search["finished_at"] is not None
    assert search["counts"] == {"queued": 0, "running": 0, "complete": 6, "pruned": 0, "failed": 0}
    trials = _trials(world, search_id)
    assert [t["number"] for t in trials] == list(range(6))
    assert all(t["state"] == "complete" and t["job_status"] == "succeeded" for t in trials)
    for t in trials:  # each value is the known function of its params at the last epoch
        assert t["value"] == pytest.approx(
            quality(t["params"]["lr"], t["params"]["width"]) * 0.75, abs=1e-5
        )
        assert sorted(t["steps"]) == ["1", "2"] and t["pruned_step"] is None
    best = max(trials, key=lambda t: t["value"])
    assert search["best"] == {
        "number": best["number"],
        "job_id": best["job_id"],
        "value": best["value"],
        "params": best["params"],
    }
    assert world.get("/api/v1/searches").json()[0]["id"] == search_id

    importances = world.get(f"/api/v1/searches/{search_id}/importances").json()
    assert importances and set(importances) <= {"lr", "width"}
    assert all(v >= 0 for v in importances.values()) and sum(importances.values()) == pytest.approx(
        1
    )

    # the jobs of the search are exactly its trials' jobs
    jobs = world.get("/api/v1/jobs", params={"search_id": search_id}).json()
    assert sorted(j["id"] for j in jobs) == sorted(t["job_id"] for t in trials)
    assert {j["id"]: j["params"] for j in jobs} == {t["job_id"]: t["params"] for t in trials}
    assert world.get("/api/v1/jobs", params={"search_id": NO_SUCH_SEARCH}).json() == []
    assert (
        world.get(
            "/api/v1/jobs", params={"search_id": search_id}, headers=world.other_headers
        ).json()
        == []
    )

    # submit-best: a one-job sweep with the best params, which reproduces the best value
    submitted = world.post(f"/api/v1/searches/{search_id}/submit-best")
    assert submitted.status_code == 201, submitted.text
    [job] = submitted.json()["jobs"]
    assert job["params"] == best["params"] and submitted.json()["id"] != search_id
    swept = world.get("/api/v1/jobs", params={"sweep_id": submitted.json()["id"]}).json()
    assert [j["id"] for j in swept] == [job["id"]]
    resolved = parse_mlsteam(
        (job_dir(world.settings, job["id"]) / "lab" / "mlsteam.yml").read_text()
    )
    assert {k: v[0] for k, v in resolved.params.items()} == best["params"]
    rerun = _run_job(scheduler, world, job["id"])
    assert rerun.status == JobStatus.SUCCEEDED
    assert (
        f"acc={best['value']:.6f}" in (job_dir(world.settings, job["id"]) / "job.log").read_text()
    )
    assert len(world.get("/api/v1/jobs", params={"search_id": search_id}).json()) == 6

    # a finished search cannot be stopped; it resumes with more trials, keeping the old ones
    stop = world.post(f"/api/v1/searches/{search_id}/stop")
    assert stop.status_code == 409 and "already finished" in stop.json()["detail"]
    resumed = world.post(f"/api/v1/searches/{search_id}/resume", json={"trials": 2})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "running" and resumed.json()["trials"] == 8
    run_search(scheduler, world.database, search_id)
    again = _trials(world, search_id)
    assert [t["number"] for t in again] == list(range(8)) and again[:6] == trials
    assert world.get(f"/api/v1/searches/{search_id}").json()["counts"]["complete"] == 8


@pytest.mark.slow
def test_stop_and_resume_refusals_while_trials_run(
    search_world: SearchWorld, search_scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPOCH_SECONDS", "0.5")
    world = search_world
    search_id = world.start(
        world.make_lab(yml=search_yml(epochs=4)), {"search": {"trials": 4, "parallel": 2}}
    )["id"]
    scheduler = search_scheduler()
    for _ in range(400):
        scheduler.tick()
        if any(
            j.status == JobStatus.RUNNING for j in snapshot(world.database, search_id)[2].values()
        ):
            break
        time.sleep(0.05)
    stopping = world.post(f"/api/v1/searches/{search_id}/stop")
    assert stopping.status_code == 200 and stopping.json()["state"] == "stopping"
    # rows and the searches folder (running trials still write into their job folders)
    before = world.footprint()[:2], world.get(f"/api/v1/searches/{search_id}").json()
    twice = world.post(f"/api/v1/searches/{search_id}/stop")
    assert twice.status_code == 409 and twice.json()["detail"] == "The search is already stopping."
    early = world.post(f"/api/v1/searches/{search_id}/resume", json={"trials": 3})
    assert early.status_code == 409 and "still stopping" in early.json()["detail"]
    assert (world.footprint()[:2], world.get(f"/api/v1/searches/{search_id}").json()) == before

    run_search(scheduler, world.database, search_id)
    stopped = world.get(f"/api/v1/searches/{search_id}").json()
    assert stopped["state"] == "stopped" and stopped["reason"] == "stopped by a user"
    have = sum(stopped["counts"].values())
    assert 1 <= have <= 2  # nothing sampled after the stop
    assert world.post(f"/api/v1/searches/{search_id}/stop").status_code == 409
    monkeypatch.setenv("EPOCH_SECONDS", "0")
    resumed = world.post(f"/api/v1/searches/{search_id}/resume", json={"trials": 1})
    assert resumed.json()["state"] == "running" and resumed.json()["trials"] == have + 1
    search, trials, _ = run_search(scheduler, world.database, search_id)
    assert search.state == "finished" and [t.number for t in trials] == list(range(have + 1))
    # the new trial ran to its end: complete, or failed when the sampler drew a diverging lr
    # (> 0.5: which one it draws depends on how many trials ran before the stop, 1 or 2)
    assert trials[-1].state in ("complete", "failed") and trials[-1].job_id is not None


# ------------------------------------------------------------------ refused starts

BAD_STARTS: dict[str, tuple[dict[str, Any], str, str]] = {
    # id: (body, the field blamed, words of the message)
    "unknown algorithm": ({"search": {"algorithm": "bayes"}}, "algorithm", "grid"),
    "trials 0": ({"search": {"trials": 0}}, "trials", "from 1 to 1000"),
    "trials 10**9": ({"search": {"trials": 10**9}}, "trials", "from 1 to 1000"),
    "trials 10**30": ({"search": {"trials": 10**30}}, "trials", "a number that large"),
    "trials abc": ({"search": {"trials": "abc"}}, "trials", "integer"),
    "trials true": ({"search": {"trials": True}}, "trials", "integer"),
    "trials 2.5": ({"search": {"trials": 2.5}}, "trials", "integer"),
    "parallel > trials": (
        {"search": {"trials": 2, "parallel": 3}},
        "parallel",
        "must not exceed trials",
    ),
    "parallel 0": ({"search": {"parallel": 0}}, "parallel", "from 1 to 1000"),
    "metric not a series": ({"search": {"metric": "acc"}}, "metric", "Validation_acc"),
    "metric a resource": ({"search": {"metric": "Train_epoch"}}, "metric", "Train_"),
    "unknown param": (
        {"space": {"dropout": {"min": 0.1, "max": 0.5}}},
        "dropout",
        "no param 'dropout'",
    ),
    "min > max": ({"space": {"lr": {"min": 0.1, "max": 0.01}}}, "lr", "must be below max"),
    "min == max": ({"space": {"lr": {"min": 0.01, "max": 0.01}}}, "lr", "must be below max"),
    "below the file's min": (
        {"space": {"lr": {"min": 1e-9, "max": 0.1}}},
        "lr",
        "below the file's minimum",
    ),
    "log with min 0": (
        {"space": {"epochs": {"min": 0, "max": 5, "log": True}}},
        "epochs",
        "min above 0",
    ),
    "log with min < 0": (
        {"space": {"epochs": {"min": -3, "max": 5, "log": True}}},
        "epochs",
        "min above 0",
    ),
    "min nan string": ({"space": {"lr": {"min": "nan", "max": 0.1}}}, "lr", "finite number"),
    "max inf string": ({"space": {"lr": {"min": 0.001, "max": "inf"}}}, "lr", "finite number"),
    "max Infinity string": (
        {"space": {"lr": {"min": 0.001, "max": "Infinity"}}},
        "lr",
        "finite number",
    ),
    "min -inf string": ({"space": {"lr": {"min": "-inf", "max": 0.1}}}, "lr", "finite number"),
    "min missing": ({"space": {"lr": {"max": 0.1}}}, "lr", "min must be a finite number"),
    "range key typo": (
        {"space": {"lr": {"min": 0.001, "maxx": 0.1}}},
        "lr",
        "'maxx' is not a range key",
    ),
    "log not a flag": (
        {"space": {"lr": {"min": 0.001, "max": 0.1, "log": [1]}}},
        "lr",
        "log must be true or false",
    ),
    "range and values": (
        {"space": {"lr": {"min": 0.001, "max": 0.1, "values": [0.01]}}},
        "lr",
        "not both",
    ),
    "range on a str param": (
        {"space": {"optimizer": {"min": 1, "max": 2}}},
        "optimizer",
        "type is str",
    ),
    "grid with a float range": (
        {"search": {"algorithm": "grid"}},
        "lr",
        "grid search needs values",
    ),
    "cmaes with no range": (
        {"search": {"algorithm": "cmaes"}, "space": {"lr": [0.01, 0.1]}},
        "algorithm",
        "CMA-ES",
    ),
    "value of the wrong type": ({"space": {"epochs": "many"}}, "epochs", "not a valid int"),
    "value not an option": ({"space": {"width": [16, 17]}}, "width", "17"),
    "no values": ({"space": {"width": []}}, "width", "at least one value"),
    "nested values": (
        {"space": {"width": [[16], [64]]}},
        "width",
        "not a string, number or boolean",
    ),
    "huge nested JSON": (
        {"space": {"lr": {"values": json.loads("[" * 900 + "]" * 900)}}},
        "lr",
        "not a string",
    ),
    "wide space": ({"space": {f"p{i}": i for i in range(5000)}}, "p0", "no param 'p0'"),
    "unknown flavor": ({"flavor": "nope"}, "flavor", "No flavor 'nope'"),
    "unknown setting": ({"search": {"patience": 3}}, "patience", "Extra"),
    "unknown top key": ({"serch": {"trials": 3}}, "serch", "Extra"),
}


@pytest.mark.parametrize("case", list(BAD_STARTS))
def test_bad_starts_are_refused_naming_the_field_and_write_nothing(
    search_world: SearchWorld, case: str
) -> None:
    world = search_world
    lab_id = world.make_lab(yml=search_yml(extra_param="optimizer: {type: str}"))
    body, field, words = BAD_STARTS[case]
    before = world.footprint()
    response = world.post(f"/api/v1/labs/{lab_id}/searches", json=body)
    assert response.status_code == 422, response.text
    assert field_of(response) == field, response.text
    assert words in message_of(response), response.text
    assert world.footprint() == before


def test_metric_missing_everywhere_is_refused(search_world: SearchWorld) -> None:
    world = search_world
    without = search_yml().split("search:\n")[0]  # an MLSteam file: no search block
    lab_id = world.make_lab(yml=without)
    before = world.footprint()
    response = world.post(f"/api/v1/labs/{lab_id}/searches", json={"search": {"trials": 3}})
    assert response.status_code == 422
    assert field_of(response) == "metric" and "is required" in message_of(response)
    assert world.footprint() == before
    started = world.start(lab_id, {"search": {"metric": "Validation_acc", "trials": 3}})
    assert started["settings"]["metric"] == "Validation_acc" and started["trials"] == 3


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"search": {"trials": NaN}}', "NaN is not a number JSON allows"),
        ('{"space": {"lr": {"min": 0.001, "max": Infinity}}}', "Infinity is not a number"),
        ('{"space": {"lr": {"min": -Infinity, "max": 0.1}}}', "-Infinity is not a number"),
        ('{"space": {"lr": {"min": 0.001, "max": 1e999}}}', "out of range"),
        ('{"space": {"lr": ' + "[" * 100_000 + "]" * 100_000 + "}}", "nested too deeply"),
    ],
    ids=["NaN", "Infinity", "-Infinity", "1e999", "deep"],
)
def test_unrepresentable_json_is_refused_and_writes_nothing(
    search_world: SearchWorld, raw: str, words: str
) -> None:
    world = search_world
    lab_id = world.make_lab()
    before = world.footprint()
    response = world.api.post(
        f"/api/v1/labs/{lab_id}/searches",
        content=raw,
        headers={**world.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and words in message_of(response), response.text
    assert world.footprint() == before


def test_grid_search_runs_each_combination_once(search_world: SearchWorld) -> None:
    world = search_world
    lab_id = world.make_lab()
    body = {"search": {"algorithm": "grid", "trials": 50}, "space": {"lr": [0.01, 0.1]}}
    started = world.start(lab_id, body)
    assert started["trials"] == 6  # 2 lr x 3 widths: never more trials than combinations
    before = world.footprint()
    refused = world.post(f"/api/v1/searches/{started['id']}/resume", json={"trials": 1})
    assert refused.status_code == 422 and field_of(refused) == "trials"
    assert "grid has 6 combinations" in message_of(refused)
    assert world.footprint() == before


# ------------------------------------------------------------------ refused actions


@pytest.mark.parametrize(
    ("trials", "field", "words"),
    [
        (993, "trials", "at most 1000 trials in all; this one has 8"),
        (1001, "trials", "less than or equal to 1000"),
        (0, "trials", "greater than or equal to 1"),
        ("abc", "trials", "integer"),
        (True, "trials", "integer"),
        (None, "trials", "integer"),
    ],
)
def test_resume_refusals_name_the_field_and_change_nothing(
    search_world: SearchWorld, trials: Any, field: str, words: str
) -> None:
    world = search_world
    search_id = world.start(world.make_lab(), {"search": {"trials": 8}})["id"]
    before = world.footprint(), world.get(f"/api/v1/searches/{search_id}").json()
    response = world.post(f"/api/v1/searches/{search_id}/resume", json={"trials": trials})
    assert response.status_code == 422, response.text
    assert field_of(response) == field and words in message_of(response), response.text
    assert (world.footprint(), world.get(f"/api/v1/searches/{search_id}").json()) == before


def test_stop_before_any_trial_then_submit_best_and_stop_again(search_world: SearchWorld) -> None:
    world = search_world
    search_id = world.start(world.make_lab(), {"search": {"trials": 3}})["id"]
    stopped = world.post(f"/api/v1/searches/{search_id}/stop")
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    before = world.footprint(), stopped.json()
    again = world.post(f"/api/v1/searches/{search_id}/stop")
    assert again.status_code == 409 and again.json()["detail"] == "The search is already stopped."
    best = world.post(f"/api/v1/searches/{search_id}/submit-best")
    assert best.status_code == 409 and "no best trial" in best.json()["detail"]
    assert (world.footprint(), world.get(f"/api/v1/searches/{search_id}").json()) == before
    resumed = world.post(f"/api/v1/searches/{search_id}/resume", json={"trials": 2})
    assert resumed.json()["state"] == "running" and resumed.json()["trials"] == 2


def test_missing_and_foreign_searches_are_404_alike(search_world: SearchWorld) -> None:
    world = search_world
    lab_id = world.make_lab()
    search_id = world.start(lab_id, {"search": {"trials": 3}})["id"]
    sweep = world.post(f"/api/v1/labs/{lab_id}/sweeps", json={"params": {"width": [16]}})
    assert sweep.status_code == 201, sweep.text
    before = world.footprint()
    calls = [
        ("GET", "", None),
        ("GET", "/trials", None),
        ("GET", "/importances", None),
        ("POST", "/stop", None),
        ("POST", "/resume", {"trials": 1}),
        ("POST", "/submit-best", None),
    ]
    for method, tail, body in calls:
        missing = world.api.request(
            method, f"/api/v1/searches/{NO_SUCH_SEARCH}{tail}", json=body, headers=world.headers
        )
        assert missing.status_code == 404, (tail, missing.text)
        # another project's search, and a plain sweep's id, answer exactly like a missing one
        for target, headers in (
            (search_id, world.other_headers),
            (sweep.json()["id"], world.headers),
        ):
            hidden = world.api.request(
                method, f"/api/v1/searches/{target}{tail}", json=body, headers=headers
            )
            assert (hidden.status_code, hidden.json()) == (404, missing.json()), (tail, hidden.text)
    assert world.get("/api/v1/searches", headers=world.other_headers).json() == []
    other_project = world.other.default_project_id
    assert world.get("/api/v1/searches", params={"project_id": other_project}).json() == []
    foreign = world.post(f"/api/v1/labs/{lab_id}/searches", json={}, headers=world.other_headers)
    assert foreign.status_code == 404
    huge = world.get("/api/v1/searches/99999999999999999999")
    assert (huge.status_code, message_of(huge)) == (
        422,
        "The number 99999999999999999999 is out of range.",
    )
    assert world.footprint() == before
