"""Metric and progress lines and log timestamps, under garbage input."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from labyard.jobs.logs import LogWriter, complete_lines, parse_stamp, split_stamp
from labyard.jobs.metrics import Point, parse_metric_line
from labyard.jobs.progress import eta_seconds, parse_progress


def test_mlsteam_metric_line() -> None:
    assert parse_metric_line("Train step=10 loss=0.818 acc=0.95") == [
        Point("Train_loss", "step", 10.0, 0.818),
        Point("Train_acc", "step", 10.0, 0.95),
    ]
    assert parse_metric_line("Validation epoch=2 loss=1e-3") == [
        Point("Validation_loss", "epoch", 2.0, 0.001)
    ]
    assert parse_metric_line("Test iter=5 epoch=1 top1=0.5") == [Point("Test_top1", "iter", 5, 0.5)]


@pytest.mark.parametrize(
    "line",
    [
        "",
        "Train",
        "Train loss=0.5",  # no x axis
        "Train step=abc loss=0.5",
        "Train step=inf loss=0.5",
        "Training step=1 loss=0.5",
        "train step=1 loss=0.5",
        "Train step=1 loss",
        "Train step=1 step=2 loss=0.5",
        "Train step=1 $(id)=1",
        "Train step=1 " + "x=1 " * 5000,
        "\x00\x01Train step=1 loss=1",
    ],
)
def test_non_metric_lines_are_ignored(line: str) -> None:
    assert parse_metric_line(line) == []


def test_bad_values_are_dropped_but_good_ones_kept() -> None:
    assert parse_metric_line("Train step=1 loss=nan acc=0.5 note=hi") == [
        Point("Train_acc", "step", 1.0, 0.5)
    ]


def test_random_garbage_never_raises() -> None:
    rng = random.Random(4)
    alphabet = "Train Validation step=epoch= 0123456789.eE-+nanif\x00\t/=Progress"
    for _ in range(3000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        parse_metric_line(line)
        parse_progress(line)


@pytest.mark.parametrize(
    ("line", "fraction"),
    [
        ("Progress epoch=3/10 step=120/773", (2 + 120 / 773) / 10),
        ("Progress epoch=3/10", 0.3),
        ("Progress epoch=10/10 step=773/773", 1.0),
        ("Progress a=1/2 b=1/2 c=1/2", (0 + (0 + 0.5) / 2) / 2),
    ],
)
def test_progress_fraction(line: str, fraction: float) -> None:
    assert parse_progress(line) == pytest.approx(fraction)


@pytest.mark.parametrize(
    "line",
    [
        "Progress",
        "Progress epoch=3",
        "Progress epoch=11/10",
        "Progress e=1/0",
        "progress epoch=1/2",
        "Progress epoch=-1/2",
    ],
)
def test_bad_progress_lines(line: str) -> None:
    assert parse_progress(line) is None


def test_eta() -> None:
    assert eta_seconds(0.25, 100) == 300
    assert eta_seconds(0.0, 100) is None and eta_seconds(1.0, 50) == 0


def test_log_writer_caps_with_one_note_and_timestamps(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "job.log"
    writer = LogWriter(path, 200)
    for i in range(50):
        writer.write_line(f"line {i}".encode())
    writer.close()
    data = path.read_bytes()
    assert len(data) <= 200 + 120 and data.count(b"log truncated") == 1
    lines, offset = complete_lines(path, 0)
    assert offset == len(data)
    stamp, text = split_stamp(lines[0])
    assert stamp is not None and text == "line 0"


def test_stamps_from_docker_and_garbage() -> None:
    assert parse_stamp(b"2026-11-22T07:13:05.642208123Z") == datetime(
        2026, 11, 22, 7, 13, 5, 642208, tzinfo=UTC
    )
    assert parse_stamp(b"2026-11-22T07:13:05Z") is not None
    for bad in (b"", b"hello", b"\xff\xfe", b"2026-13-22T07:13:05Z", b"2026-11-22T07:13:05.x1Z"):
        assert parse_stamp(bad) is None
    assert split_stamp(b"\xff\xfe garbage")[1].endswith("garbage")


def test_partial_lines_wait_for_their_newline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "job.log"
    path.write_bytes(b"a\nb")
    lines, offset = complete_lines(path, 0)
    assert lines == [b"a"] and offset == 2
    assert complete_lines(path, offset) == ([], 2)
