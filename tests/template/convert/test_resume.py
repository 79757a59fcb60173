"""Checkpoint and resume of a conversion: a run stopped at an image boundary (by SIGTERM
or --max_images_this_run) resumes after the images it wrote and ends with exactly the
bytes of an uninterrupted run, class folders and TFRecord shards alike."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cls.stopping import EXIT_CODE
from conversion.checkpoint import CHECKPOINT
from conversion.options import parse_args

from ..test_sigterm import make_lab, start_job, terminate_after
from .conftest import convert, write_banded


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: relative path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fmt", ["class_folders", "tfrecord"])
def test_stopped_runs_resume_to_exactly_the_uninterrupted_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    source = write_banded(tmp_path / "banded")  # 17 images: train 13, val 2, test 2
    flags = ["--output_format", fmt, "--images_per_shard", 3, "--workers", 1]
    assert convert(source, tmp_path / "straight", *flags) == 0
    cut = tmp_path / "cut"
    assert convert(source, cut, *flags, "--max_images_this_run", 5) == EXIT_CODE
    state = json.loads((cut / CHECKPOINT).read_text())
    assert state["current"]["done"] == 5 and not (cut / "dataset").exists()
    if fmt == "tfrecord":  # a full shard and the open one
        assert state["current"]["files"] == [f"train-0000{i}-of-00005.tfrecord" for i in range(2)]
    else:  # the finished images are not converted again: a damaged source goes unnoticed
        done = sorted((cut / "dataset.partial" / "train").glob("*/*.png"))
        assert len(done) == 5
        (source / done[0].parent.name / done[0].name).write_bytes(b"damaged")
    capsys.readouterr()
    # twice more: 10 images, then 15 (train 13 + val 2: it stops at a part's end), then the rest
    assert convert(source, cut, *flags, "--max_images_this_run", 5, "--resume") == EXIT_CODE
    out = capsys.readouterr().out
    assert "Resume: 5 of 17 images already converted" in out
    assert "Progress epoch=1/1 step=5/17" in out and "step=4/17" not in out
    assert convert(source, cut, *flags, "--max_images_this_run", 5, "--resume") == EXIT_CODE
    state = json.loads((cut / CHECKPOINT).read_text())
    assert state["finished"].keys() == {"train", "val"} and state["current"] == {}
    assert convert(source, cut, *flags, "--resume", "auto") == 0
    assert tree(cut / "dataset") == tree(tmp_path / "straight" / "dataset")
    assert not (cut / CHECKPOINT).exists() and not (cut / "dataset.partial").exists()
    summaries = [json.loads((d / "summary.json").read_text()) for d in (cut, tmp_path / "straight")]
    assert summaries[0]["parts"] == summaries[1]["parts"]
    assert summaries[0].get("shards") == summaries[1].get("shards")


def test_a_checkpoint_of_other_options_is_refused_and_kept(
    banded_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert convert(banded_dir, out, "--max_images_this_run", 4, "--workers", 1) == EXIT_CODE
    kept = tree(out)
    assert convert(banded_dir, out, "--image_size", 16, "--resume") == 2
    assert "written for other options or another source" in capsys.readouterr().err
    assert tree(out) == kept  # nothing thrown away
    assert convert(banded_dir, out, "--resume", tmp_path / "none.json") == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert convert(banded_dir, out) == 0  # no --resume: starts afresh over the partial one
    assert "Resume:" not in capsys.readouterr().out


def test_resume_defaults_to_mlsteam_resume(
    banded_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["--data_dir", str(banded_dir), "--output_dir", str(tmp_path)]
    monkeypatch.setenv("MLSTEAM_RESUME", "auto")
    assert parse_args(base).resume == "auto"
    assert parse_args([*base, "--resume", ""]).resume is None
    assert parse_args([*base, "--resume", "c.json"]).resume == "c.json"
    monkeypatch.setenv("MLSTEAM_RESUME", "")
    assert parse_args(base).resume is None


def test_sigterm_stops_at_an_image_and_the_job_resumes_exactly(
    digits_dir: Path, tmp_path: Path
) -> None:
    lab = make_lab("convert", tmp_path / "lab")
    params = {"workers": 1, "image_size": 16}
    code, _, err = start_job(lab, digits_dir, tmp_path / "straight", params).finish()
    assert code == 0, err[-3000:]
    job = start_job(lab, digits_dir, tmp_path / "cut", params)
    code, out, err = terminate_after(job, "Progress epoch=1/1 step=17/1797")
    assert code == EXIT_CODE, (out[-2000:], err[-3000:])
    stopped = re.search(
        r"^Stopped by SIGTERM after (\d+) of 1797 images: .*--resume auto", out, re.M
    )
    assert stopped and 17 <= int(stopped.group(1)) < 1797, out[-2000:]
    state = json.loads((tmp_path / "cut" / CHECKPOINT).read_text())
    assert state["current"] == {"part": "train", "done": int(stopped.group(1)), "files": []}
    code, out, err = start_job(
        lab, digits_dir, tmp_path / "cut", {**params, "resume": "auto"}
    ).finish()
    assert code == 0, err[-3000:]
    assert f"Resume: {stopped.group(1)} of 1797 images already converted" in out
    assert tree(tmp_path / "cut" / "dataset") == tree(tmp_path / "straight" / "dataset")
