"""The progress line's meaning and the ETA's pace (labyard.jobs.progress)."""

from __future__ import annotations

import pytest

from labyard.jobs.progress import eta_seconds, parse_progress


def test_step_counts_within_the_running_epoch() -> None:
    # epoch 1 of 5 finished (every one of its 21 steps): a fifth of the run
    assert parse_progress("Progress epoch=1/5 step=21/21") == pytest.approx(0.2)
    # the same moment written as "epoch 2 is starting"
    assert parse_progress("Progress epoch=2/5 step=0/21") == pytest.approx(0.2)
    # a global step (21 of 105) is not a step of the epoch: it reads as 4 %, which is why
    # programs must print the step within the epoch
    assert parse_progress("Progress epoch=1/5 step=21/105") == pytest.approx(0.04)


def test_eta_measures_the_pace_from_the_first_progress_line() -> None:
    # 30 s of start-up, then step=0; 10 s later a fifth is done: 40 s are left
    assert eta_seconds(0.2, 40.0, start=(0.0, 30.0)) == pytest.approx(40.0)
    # the pace from the job's start would have said 160 s
    assert eta_seconds(0.2, 40.0) == pytest.approx(160.0)
    # a run resumed at 60 %: 10 s for the next 10 % means 30 s left
    assert eta_seconds(0.7, 15.0, start=(0.6, 5.0)) == pytest.approx(30.0)


def test_eta_falls_back_to_the_pace_since_start_until_progress_moves() -> None:
    assert eta_seconds(0.25, 100.0, start=(0.25, 100.0)) == pytest.approx(300.0)
    assert eta_seconds(0.0, 10.0, start=(0.0, 10.0)) is None
    assert eta_seconds(1.0, 50.0, start=(0.0, 5.0)) == 0
