"""The pruner judges each step a trial reported, in order: reports the driver reads in one
batch (a job that printed epochs 3 and 4 between two scheduler steps) are judged at the
rung they reached, never only at the batch's last step."""

from __future__ import annotations

from labyard.searches import study
from labyard.searches.study import Record
from labyard.searchspec import ParamSpace, SearchSettings

SETTINGS = SearchSettings(
    metric="acc",
    algorithm="random",
    trials=9,
    parallel=3,
    early_stopping="asha",
    min_resource=1,
    reduction_factor=3,
)
SPACE = {"lr": ParamSpace("float", 0.001, 0.1, log=True)}


def _built(steps_of_last: dict[str, float]) -> object:
    # two better trials already passed rungs 0 (epoch 1) and 1 (epoch 3)
    better = {"1": 0.8, "2": 0.85, "3": 0.9}
    attrs = {"completed_rung_0": 0.8, "completed_rung_1": 0.9}
    rows = [
        Record(0, "running", {"lr": 0.01}, None, dict(better), dict(attrs)),
        Record(1, "running", {"lr": 0.02}, None, dict(better), dict(attrs)),
        Record(2, "running", {"lr": 0.05}, None, steps_of_last, {"completed_rung_0": 0.85}),
    ]
    return study.build("s", SETTINGS, SPACE, rows, seed=1)


def test_a_batch_of_reports_is_judged_at_the_rung_it_crossed() -> None:
    built = _built({"1": 0.85, "2": 0.1, "3": 0.1, "4": 0.12})
    step, attrs = study.judge(built, 2, after=1)  # type: ignore[arg-type]
    assert step == 3  # rung 1 is at epoch 3: the trial is stopped there, not at 4
    assert attrs["completed_rung_1"] == 0.1  # judged on epoch 3's value, not epoch 4's 0.12


def test_steps_judged_before_are_not_judged_again() -> None:
    built = _built({"1": 0.85, "2": 0.1, "3": 0.1, "4": 0.1})
    step, attrs = study.judge(built, 2, after=4)  # type: ignore[arg-type]
    assert step is None
    assert "completed_rung_1" not in attrs


def test_a_trial_between_rungs_runs_on() -> None:
    built = _built({"1": 0.85, "2": 0.1})
    step, _ = study.judge(built, 2, after=1)  # type: ignore[arg-type]
    assert step is None
