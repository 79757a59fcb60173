"""The regression template: stated R² standalone, a platform job's lines and files,
ONNX vs onnxruntime, predict.py, --weights with a new head, SIGTERM + resume."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from cls.data import Split, decode_all
from PIL import Image
from reg.config import build_parser
from reg.data import read_table
from reg.export import load_model
from reg.main import main
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ..conftest import run_python
from ..test_sigterm import assert_resumes_exactly
from .conftest import R2_STATED, TEMPLATE

METRIC = re.compile(r"^(Train|Validation|Test) (step|epoch)=(\d+)( [a-z0-9_]+=[-+.\deE]+)+$")


def _value(line: str, key: str) -> float:
    match = re.search(rf" {key}=([-+.\deE]+)", line)
    assert match, line
    return float(match.group(1))


def test_standalone_run_reaches_the_stated_r2(
    perceptions_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data_dir", str(perceptions_dir), "--output_dir", str(tmp_path), "--workers", "0"]
    assert main(argv) == 0
    test_line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Test "))
    assert _value(test_line, "r2") >= R2_STATED, test_line
    assert all(_value(test_line, f"r2_{t}") >= 0.65 for t in ("greenery", "brightness", "crowding"))


def test_job_prints_metric_progress_and_summary_lines(reg_job: tuple[Path, str]) -> None:
    lines = reg_job[1].splitlines()
    metrics = [ln for ln in lines if ln.startswith(("Train ", "Validation ", "Test "))]
    assert metrics and all(METRIC.match(ln) for ln in metrics), metrics[:3]
    assert metrics[0].startswith("Train step=10 loss=") and " mae=" in metrics[0]
    val = [ln for ln in metrics if ln.startswith("Validation ")]
    assert [ln.split()[1] for ln in val] == [f"epoch={e}" for e in range(1, 16)]
    assert all(f" r2_{t}=" in val[0] for t in ("greenery", "brightness", "crowding"))
    progress = [ln for ln in lines if ln.startswith("Progress ")]
    assert (
        progress[0] == "Progress epoch=1/15 step=0/25"
        and progress[-1] == "Progress epoch=15/15 step=25/25"
    )
    assert (
        "==== Model summary ====" in lines and "train 800, val 200, test 200 images" in reg_job[1]
    )
    assert _value(next(ln for ln in metrics if ln.startswith("Test ")), "r2") >= R2_STATED


def test_job_writes_model_onnx_scatter_and_tensorboard(reg_job: tuple[Path, str]) -> None:
    out = reg_job[0]
    for name in ("model.pt", "model.onnx", "best.pt", "checkpoint.pt", "test_predictions.csv"):
        assert (out / name).is_file(), name
    with Image.open(out / "scatter.png") as img:
        assert img.size[0] >= 3 * 200 and len(img.convert("L").getcolors(256) or []) > 3
    report = json.loads((out / "test_metrics.json").read_text())
    assert report["targets"] == ["greenery", "brightness", "crowding"]
    assert report["mean"]["r2"] >= R2_STATED
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    assert {"Train/loss", "Train/mae", "Validation/r2", "Validation/mae", "Test/r2"} <= set(
        events.Tags()["scalars"]
    )
    assert {"Train/samples", "Test/scatter"} <= set(events.Tags()["images"])


def test_onnx_agrees_with_pytorch_and_onnxruntime(
    reg_job: tuple[Path, str], perceptions_dir: Path
) -> None:
    model, meta = load_model(reg_job[0] / "model.pt")
    names, table = read_table(perceptions_dir / "test.csv", "image", [])
    x = decode_all(Split(table.paths[:64], [0] * 64), 3, meta["image_size"]).float() / 255.0
    session = ort.InferenceSession(str(reg_job[0] / "model.onnx"))
    onnx_out = session.run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        torch_out = model(x).numpy()
    assert onnx_out.shape == (64, 3) and np.abs(onnx_out - torch_out).max() < 1e-4
    assert np.abs(torch_out - table.scores[:64]).mean() < 1.0  # in score units (0..10)


def test_predict_writes_scores(
    reg_job: tuple[Path, str], perceptions_dir: Path, tmp_path: Path
) -> None:
    csv_path = tmp_path / "preds.csv"
    images = perceptions_dir / "images" / "test"
    argv = ["predict.py", "--model", str(reg_job[0] / "model.pt"), "--input", str(images)]
    argv += ["--output", str(csv_path)]
    proc = run_python(argv, TEMPLATE, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 200 and list(rows[0]) == ["image", "greenery", "brightness", "crowding"]
    _, table = read_table(perceptions_dir / "test.csv", "image", [])
    bright = np.array([float(r["brightness"]) for r in rows])
    assert np.corrcoef(bright, table.scores[:, 1])[0, 1] > 0.95  # same (sorted) order


def test_weights_with_another_head_are_reinitialised(
    reg_job: tuple[Path, str], perceptions_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    argv = ["--data_dir", str(perceptions_dir), "--output_dir", str(tmp_path), "--workers", "0",
            "--targets", "brightness", "--weights", str(reg_job[0] / "model.pt"),
            "--num_epoch", "1"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Weights: re-initialised classifier.5.weight" in out and "Weights: loaded 8/10" in out
    assert "targets brightness," in out
    assert _value(next(ln for ln in out.splitlines() if ln.startswith("Test ")), "r2") > 0.8


def test_mlsteam_yml_and_template_yml_match_the_flags() -> None:
    spec = yaml.safe_load((TEMPLATE / "mlsteam.yml").read_text())
    actions = {a.dest: a for a in build_parser()._actions}
    for name, value in spec["params"].items():
        first = value[0] if isinstance(value, list) else value
        if name == "weights":  # '' (none) is what the flag's None means
            assert first == "" and actions[name].default is None
            continue
        assert type(actions[name].default)(first) == actions[name].default, name
    for name, definition in spec["params_definition"].items():
        if definition.get("type") == "weights":
            assert name == "weights"
        elif "options" in definition:
            assert list(definition["options"]) == list(actions[name].choices or []), name
        else:
            assert definition["min"] <= actions[name].default <= definition["max"], name
    manifest = yaml.safe_load((TEMPLATE / "template.yml").read_text())
    assert manifest["default_datasets"] == ["perceptions"] and manifest["default_flavor"] == "cpu"
    assert manifest["include"] == ["classification/cls"]


@pytest.mark.slow
def test_sigterm_then_resume_equals_an_uninterrupted_run(
    reg_lab: Path, perceptions_dir: Path, tmp_path: Path
) -> None:
    params = {"num_epoch": 3, "aug_list": "flip_random", "log_every": 5}
    assert_resumes_exactly(reg_lab, perceptions_dir, tmp_path, params, "Validation epoch=1 ")
