"""Train lines at the end of every epoch (short epochs and last partial windows) and Progress
lines the platform reads as the true share of the run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from cls.engine import Runtime, Trainer
from torch import nn

from labyard.jobs.progress import parse_progress

from .conftest import JobRun, run_job

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def _batches(count: int, size: int = 8) -> Batches:
    gen = torch.Generator().manual_seed(1)
    return [
        (
            torch.randint(0, 256, (size, 1, 4, 4), dtype=torch.uint8, generator=gen),
            torch.randint(0, 3, (size,), generator=gen),
        )
        for _ in range(count)
    ]


def _frozen_trainer() -> tuple[Trainer, nn.Module]:
    """A tiny model that does not learn (lr 0), so each batch's loss can be recomputed."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    return Trainer(model, optimizer, Runtime(torch.device("cpu"))), model


def _mean_loss(model: nn.Module, batches: Batches) -> float:
    with torch.no_grad():
        losses = [F.cross_entropy(model(x.float() / 255.0), y, reduction="sum") for x, y in batches]
    return float(sum(losses)) / sum(len(y) for _, y in batches)


def _logged(trainer: Trainer, batches: Batches, log_every: int) -> list[tuple[int, float]]:
    calls: list[tuple[int, float]] = []
    trainer.train_one_epoch(
        batches,
        0,
        log_every=log_every,
        start_step=100,
        on_log=lambda step, loss, acc, rate: calls.append((step, loss)),
    )
    return calls


def test_an_epoch_shorter_than_log_every_still_reports() -> None:
    trainer, model = _frozen_trainer()
    batches = _batches(6)
    calls = _logged(trainer, batches, log_every=10)
    assert [step for step, _ in calls] == [106]
    assert calls[0][1] == pytest.approx(_mean_loss(model, batches), rel=1e-5)


def test_the_last_partial_window_of_an_epoch_is_reported() -> None:
    trainer, model = _frozen_trainer()
    batches = _batches(6)
    calls = _logged(trainer, batches, log_every=4)
    assert [step for step, _ in calls] == [104, 106]
    assert calls[0][1] == pytest.approx(_mean_loss(model, batches[:4]), rel=1e-5)
    assert calls[1][1] == pytest.approx(_mean_loss(model, batches[4:]), rel=1e-5)
    # an epoch that ends on a window boundary reports once per window, never twice
    assert [step for step, _ in _logged(trainer, _batches(8), log_every=4)] == [104, 108]


def _check_progress_agrees(stdout: str, steps_per_epoch: int, epochs: int) -> None:
    """Every Progress line, read by the platform, is the share of all steps done so far."""
    total = steps_per_epoch * epochs
    done = 0
    progress = []
    for line in stdout.splitlines():
        train = re.match(r"^Train step=(\d+) ", line)
        if train:
            done = int(train.group(1))
        elif line.startswith("Progress "):
            fraction = parse_progress(line)
            assert fraction == pytest.approx(done / total), (line, done)
            progress.append(fraction)
    assert progress[0] == 0.0 and progress[-1] == pytest.approx(1.0)
    assert progress == sorted(progress)


def test_a_short_epoch_prints_train_lines_and_true_progress(
    tmp_path: Path, digits_dir: Path
) -> None:
    # batch 256 on digits' 1,295 training images: 6 steps an epoch, fewer than --log_every
    job = run_job(tmp_path, digits_dir, {"num_epoch": 2, "batch_size": 256})
    assert job.returncode == 0, job.stderr[-3000:]
    train = [ln.split()[1] for ln in job.stdout.splitlines() if ln.startswith("Train step=")]
    assert train == ["step=6", "step=12"]
    progress = [ln for ln in job.stdout.splitlines() if ln.startswith("Progress ")]
    assert progress[0] == "Progress epoch=1/2 step=0/6"
    assert progress[-1] == "Progress epoch=2/2 step=6/6"
    _check_progress_agrees(job.stdout, steps_per_epoch=6, epochs=2)


def test_progress_lines_are_the_share_of_steps_done(lenet_job: JobRun) -> None:
    _check_progress_agrees(lenet_job.stdout, steps_per_epoch=21, epochs=5)
