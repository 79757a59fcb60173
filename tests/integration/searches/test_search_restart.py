"""`kill -9` of a real `labyard serve` in the middle of an ASHA search (trials running, some
pruned already), then a restart: the search finishes with no trial lost, none run twice, and
the pruner's decisions as they were made."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs.models import JobStatus
from labyard.jobs.service import job_dir
from labyard.searches.models import Search, SearchState, TrialState
from tests.factories import make_users_fast
from tests.integration.jobs.test_restart import server  # noqa: F401 - the `labyard serve` fixture
from tests.integration.searches.conftest import snapshot, start, write_search_lab

TRIALS = 9
ASHA = {
    "trials": TRIALS,
    "parallel": 3,
    "early_stopping": "asha",
    "min_resource": 1,
    "reduction_factor": 3,
    "algorithm": "random",
    "seed": 11,
}


def _wait(check: Callable[[], bool], what: str, server_log: Path, timeout: float = 240) -> None:
    """Poll until `check()` (a safety timeout, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            log = server_log.read_text()[-3000:] if server_log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{log}")
        time.sleep(0.1)


def _search_state(database: Database, search_id: int) -> str:
    with database.read_session() as db:
        search = db.get(Search, search_id)
        assert search is not None
        return search.state


def _mid_search(database: Database, search_id: int) -> bool:
    """Some trial was pruned and some trial's job runs."""
    _, trials, jobs = snapshot(database, search_id)
    pruned = any(t.state == TrialState.PRUNED for t in trials)
    return pruned and any(j.status == JobStatus.RUNNING for j in jobs.values())


def _decision(trial: Any) -> tuple[Any, ...]:
    return (
        trial.number,
        trial.job_id,
        trial.params,
        trial.state,
        trial.pruned_step,
        trial.system_attrs,
    )


@pytest.mark.slow
@pytest.mark.usefixtures("flavors")
def test_search_survives_server_kill9(
    settings: Settings,
    database: Database,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EPOCH_SECONDS", "1")  # the servers' jobs inherit it
    start_server = request.getfixturevalue("server")
    lab = write_search_lab(tmp_path / "lab", epochs=9)
    user = make_users_fast(database, "restart")["restart"]
    search_id = start(database, settings, user, lab, overrides=ASHA)
    server_log = tmp_path / "server.log"

    first = start_server()
    _wait(lambda: _mid_search(database, search_id), "a pruned trial and a running one", server_log)
    first.send_signal(signal.SIGKILL)
    first.wait()
    _, before, jobs_before = snapshot(database, search_id)
    pruned_before = {t.number: _decision(t) for t in before if t.state == TrialState.PRUNED}
    running_before = [j.id for j in jobs_before.values() if j.status == JobStatus.RUNNING]
    assert pruned_before and running_before
    assert _search_state(database, search_id) == SearchState.RUNNING

    start_server()
    _wait(lambda: _search_state(database, search_id) == SearchState.FINISHED, "the end", server_log)

    _, trials, jobs = snapshot(database, search_id)
    # no trial lost: numbers 0..N-1, each ended
    assert [t.number for t in trials] == list(range(TRIALS))
    assert all(t.finished_at is not None and t.state != TrialState.RUNNING for t in trials)
    # none run twice: each trial one job, each job one trial, each job started once
    assert sorted(t.job_id for t in trials if t.job_id) == sorted(jobs) and len(jobs) == TRIALS
    for job in jobs.values():
        starts = job_dir(settings, job.id) / "output" / "starts.txt"
        assert starts.read_text() == "start\n", job.id
        assert job.attempt == 1, job.id
    # the jobs that ran through the kill were adopted and followed, not lost
    for job_id in running_before:
        assert jobs[job_id].status in (JobStatus.SUCCEEDED, JobStatus.PRUNED), jobs[job_id].reason
    # the pruner's decisions made before the kill are intact, and their jobs ended pruned
    after = {t.number: t for t in trials}
    for number, decision in pruned_before.items():
        assert _decision(after[number]) == decision
        job = jobs[after[number].job_id or -1]
        assert job.status == JobStatus.PRUNED
        assert job.reason.startswith(f"pruned by asha at epoch {decision[4]}")
    # and the search went on pruning and completing with the same rules after the restart
    states = {t.state for t in trials}
    assert states <= {TrialState.PRUNED, TrialState.COMPLETE} and TrialState.COMPLETE in states
    for t in trials:
        if t.state == TrialState.PRUNED:
            assert t.pruned_step in (1, 3) and jobs[t.job_id or -1].status == JobStatus.PRUNED
        else:
            assert max(int(k) for k in t.steps) == 9
            assert jobs[t.job_id or -1].status == JobStatus.SUCCEEDED
