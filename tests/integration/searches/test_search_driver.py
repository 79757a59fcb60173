"""The search driver on real jobs: TPE finds the known best region, ASHA prunes at its
rungs and the pruned jobs end `pruned` after SIGTERM, failed trials do not end a search,
and a stopped search resumes with more trials, keeping the earlier ones."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import JobStatus
from labyard.jobs.service import job_dir
from labyard.searches import service
from labyard.searches.models import SearchState, TrialState
from tests.factories import make_users_fast
from tests.integration.searches.conftest import quality, run_search, snapshot, start

pytestmark = pytest.mark.usefixtures("flavors")


def test_tpe_finds_the_known_best_region(
    settings: Settings, database: Database, search_lab: Path, search_scheduler
) -> None:
    user = make_users_fast(database, "tpe")["tpe"]
    search_id = start(
        database,
        settings,
        user,
        search_lab,
        overrides={"trials": 24, "parallel": 4, "seed": 3},
        space={"epochs": 2, "lr": {"min": 0.0001, "max": 0.5, "log": True}},
    )
    search, trials, jobs = run_search(search_scheduler(), database, search_id)
    assert search.state == SearchState.FINISHED
    assert [t.number for t in trials] == list(range(24))
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.reason for t in trials]
    assert len({t.job_id for t in trials}) == 24
    assert all(jobs[t.job_id].status == JobStatus.SUCCEEDED for t in trials if t.job_id)
    best = max(trials, key=lambda t: t.value or 0.0)
    assert best.params["width"] == 64
    assert 0.002 <= best.params["lr"] <= 0.05, best.params
    # each trial's value is its job's last printed accuracy: the known function of its params
    for t in trials:
        expected = quality(t.params["lr"], t.params["width"]) * 0.75
        assert t.value == pytest.approx(expected, abs=1e-5)
    # the later half of the trials (after the random start-up ones) sampled closer to the
    # optimum than the first half: TPE learns from the completed trials
    distance = [abs(math.log10(t.params["lr"]) + 2) for t in trials]
    assert sum(distance[12:]) < sum(distance[:12])
    # the floats a job sees are rounded for people to read
    assert all(len(f"{t.params['lr']:.10g}".replace("0.", "").lstrip("0")) <= 5 for t in trials)


def test_asha_prunes_at_its_rungs_and_jobs_end_pruned(
    settings: Settings, database: Database, tmp_path: Path, search_scheduler, monkeypatch
) -> None:
    monkeypatch.setenv("EPOCH_SECONDS", "0.3")
    from tests.integration.searches.conftest import write_search_lab

    lab = write_search_lab(tmp_path / "lab", epochs=9)
    user = make_users_fast(database, "asha")["asha"]
    search_id = start(
        database,
        settings,
        user,
        lab,
        overrides={
            "trials": 9,
            "parallel": 3,
            "early_stopping": "asha",
            "min_resource": 1,
            "reduction_factor": 3,
            "algorithm": "random",
            "seed": 11,
        },
    )
    search, trials, jobs = run_search(search_scheduler(), database, search_id, timeout=240)
    assert search.state == SearchState.FINISHED
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete
    assert len(pruned) + len(complete) == 9
    for t in pruned:
        assert t.pruned_step in (1, 3), t.pruned_step  # ASHA's rungs: 1, 3, 9 epochs
        assert f"completed_rung_{0 if t.pruned_step == 1 else 1}" in t.system_attrs
        job = jobs[t.job_id or -1]
        assert job.status == JobStatus.PRUNED
        assert job.reason.startswith(f"pruned by asha at epoch {t.pruned_step}")
        log = (job_dir(settings, job.id) / "job.log").read_text()
        assert "got SIGTERM" in log  # stopped gracefully, not killed
        assert "Validation epoch=9" not in log
        # the trial was stopped because its rung value was not among the best at that rung
        rung = f"completed_rung_{0 if t.pruned_step == 1 else 1}"
        others = [o.system_attrs[rung] for o in trials if o is not t and rung in o.system_attrs]
        assert others and t.system_attrs[rung] < max(others)
    for t in complete:
        assert jobs[t.job_id or -1].status == JobStatus.SUCCEEDED
        assert max(int(k) for k in t.steps) == 9
    # the best complete trial beats every pruned trial's known final quality
    best = max(complete, key=lambda t: t.value or 0.0)
    assert best.value is not None
    assert all(
        best.value >= quality(t.params["lr"], t.params["width"]) * (1 - 0.5**9) - 0.2
        for t in pruned
    )


def test_failed_trials_do_not_end_the_search(
    settings: Settings, database: Database, search_lab: Path, search_scheduler
) -> None:
    user = make_users_fast(database, "fails")["fails"]
    search_id = start(
        database,
        settings,
        user,
        search_lab,
        overrides={"trials": 8, "parallel": 2, "algorithm": "random", "seed": 5},
        space={"lr": {"min": 0.1, "max": 1.0, "log": True}, "epochs": 1},
    )
    search, trials, jobs = run_search(search_scheduler(), database, search_id)
    assert search.state == SearchState.FINISHED
    failed = [t for t in trials if t.state == TrialState.FAILED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and complete and len(trials) == 8
    for t in failed:
        assert t.params["lr"] > 0.5
        assert jobs[t.job_id or -1].status == JobStatus.FAILED
        assert "exited with code 1" in t.reason
    with database.session() as db:
        found = service.get_search(db, user, search_id)
        best = service.best_trial(found, service.trials_of(db, search_id))
        assert best is not None and best.params["lr"] <= 0.5


def test_stop_then_resume_with_more_trials(
    settings: Settings, database: Database, search_lab: Path, search_scheduler, monkeypatch
) -> None:
    monkeypatch.setenv("EPOCH_SECONDS", "0.5")
    user = make_users_fast(database, "stopper")["stopper"]
    search_id = start(
        database,
        settings,
        user,
        search_lab,
        overrides={"trials": 6, "parallel": 2, "seed": 1},
        space={"lr": {"min": 0.0001, "max": 0.5}},
    )
    scheduler = search_scheduler()
    for _ in range(200):
        scheduler.tick()
        _, trials, jobs = snapshot(database, search_id)
        if any(j.status == JobStatus.RUNNING for j in jobs.values()):
            break
    with database.session() as db:
        stopped = service.stop_search(db, user, search_id)
        assert stopped.state == SearchState.STOPPING
    search, trials, jobs = run_search(scheduler, database, search_id)
    assert search.state == SearchState.STOPPED
    assert len(trials) == 2  # nothing sampled after the stop
    assert all(t.state == TrialState.FAILED for t in trials)
    assert all(j.status == JobStatus.STOPPED for j in jobs.values())
    before = {t.number: (t.job_id, t.params) for t in trials}

    with database.session() as db:
        resumed = service.resume_search(db, user, search_id, more_trials=3)
        assert resumed.trials_wanted == 5 and resumed.state == SearchState.RUNNING
    monkeypatch.setenv("EPOCH_SECONDS", "0")
    search, trials, jobs = run_search(scheduler, database, search_id)
    assert search.state == SearchState.FINISHED
    # the stopped search had 2 trials; resuming runs 3 more
    assert [t.number for t in trials] == list(range(5))
    assert {t.number: (t.job_id, t.params) for t in trials[:2]} == before
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3
    for job in jobs.values():  # every job ran once
        starts = job_dir(settings, job.id) / "output" / "starts.txt"
        assert not starts.exists() or starts.read_text().count("start") == 1


@pytest.mark.parametrize(
    ("algorithm", "early_stopping", "space"),
    [
        ("grid", "none", {"lr": [0.001, 0.01, 0.1], "width": [16, 64]}),
        ("cmaes", "median", {"lr": {"min": 0.0001, "max": 0.5, "log": True}}),
        ("random", "hyperband", {"lr": {"min": 0.0001, "max": 0.5, "log": True}}),
    ],
)
def test_every_algorithm_and_rule_runs_a_search_to_its_end(
    settings: Settings,
    database: Database,
    tmp_path: Path,
    search_scheduler,
    monkeypatch,
    algorithm: str,
    early_stopping: str,
    space: dict[str, object],
) -> None:
    from tests.integration.searches.conftest import write_search_lab

    monkeypatch.setenv("EPOCH_SECONDS", "0.1")
    lab = write_search_lab(tmp_path / "lab", epochs=4)
    user = make_users_fast(database, f"alg-{algorithm}")[f"alg-{algorithm}"]
    search_id = start(
        database,
        settings,
        user,
        lab,
        overrides={
            "algorithm": algorithm,
            "early_stopping": early_stopping,
            "trials": 8,
            "parallel": 2,
            "seed": 2,
            "max_resource": 4,
        },
        space=space,
    )
    search, trials, jobs = run_search(search_scheduler(), database, search_id, timeout=180)
    assert search.state == SearchState.FINISHED
    if algorithm == "grid":  # a grid runs each of its 6 combinations once, and no more
        assert search.trials_wanted == 6
        combos = {(t.params["lr"], t.params["width"]) for t in trials}
        assert combos == {(lr, w) for lr in (0.001, 0.01, 0.1) for w in (16, 64)}
    else:
        assert len(trials) == 8
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    for t in trials:
        job = jobs[t.job_id or -1]
        expected = JobStatus.PRUNED if t.state == TrialState.PRUNED else JobStatus.SUCCEEDED
        assert job.status == expected


def test_deleting_the_project_removes_the_search_and_its_snapshot(
    settings: Settings, database: Database, search_lab: Path, search_scheduler
) -> None:
    from labyard.app import wire_hooks
    from labyard.projects import service as projects_service
    from labyard.searches.models import Search, SearchTrial

    wire_hooks()
    user = make_users_fast(database, "deleter")["deleter"]
    with database.session() as db:
        project = projects_service.create_project(db, owner=user, name="doomed")
        project_id = project.id
    user.default_project_id, own = project_id, user.default_project_id
    search_id = start(database, settings, user, search_lab, overrides={"trials": 2, "parallel": 2})
    user.default_project_id = own
    run_search(search_scheduler(), database, search_id)
    folder = service.search_dir(settings, search_id)
    assert (folder / "lab" / "train.py").is_file()
    with database.session() as db:
        projects_service.delete_project(db, user, project_id, settings=settings)
    with database.session() as db:
        assert db.get(Search, search_id) is None
        assert db.query(SearchTrial).filter_by(search_id=search_id).count() == 0
    assert not folder.exists()


def test_a_trial_that_finished_its_epochs_is_never_pruned(
    settings: Settings, database: Database, tmp_path: Path, search_scheduler, monkeypatch
) -> None:
    from tests.integration.searches.conftest import write_search_lab

    # ASHA's rungs are 1 and 3 epochs, and the jobs train 3: a trial judged at its last
    # epoch has done all its work (its progress line says 3/3), so it completes
    monkeypatch.setenv("EPOCH_SECONDS", "0.2")
    lab = write_search_lab(tmp_path / "lab", epochs=3)
    user = make_users_fast(database, "lastepoch")["lastepoch"]
    search_id = start(
        database,
        settings,
        user,
        lab,
        overrides={
            "trials": 9,
            "parallel": 3,
            "early_stopping": "asha",
            "algorithm": "random",
            "seed": 11,
        },
        space={"lr": {"min": 0.0001, "max": 0.5, "log": True}},
    )
    search, trials, jobs = run_search(search_scheduler(), database, search_id, timeout=240)
    assert search.state == SearchState.FINISHED
    assert any(t.state == TrialState.PRUNED for t in trials)
    for t in trials:
        if t.state == TrialState.PRUNED:
            assert t.pruned_step == 1, (t.number, t.pruned_step)
        else:
            assert t.state == TrialState.COMPLETE
            assert jobs[t.job_id or -1].status == JobStatus.SUCCEEDED
