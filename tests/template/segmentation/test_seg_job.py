"""train.py standalone and as a platform job: Dice reached, metric and progress lines,
model + ONNX (checked with onnxruntime), overlays, TensorBoard, predict.py, --resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from cls.config import build_parser as cls_parser
from PIL import Image
from seg.config import build_parser
from seg.export import load_segmenter
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from labyard.mlsteam import parse_mlsteam

from ..conftest import run_python
from ..test_sigterm import assert_resumes_exactly
from .conftest import SEG_TEMPLATE

METRIC = re.compile(r"^(Train|Validation|Test) (step|epoch)=(\d+)( [a-z_]+=[-+.\deE]+)+$")
STATED_DICE = 0.90  # README: "a test Dice of at least 0.90" with the default params


@pytest.mark.slow
def test_from_lab_templates_standalone_reaches_the_stated_dice(
    shapes_dir: Path, tmp_path: Path
) -> None:
    """``python train.py --data_dir D --output_dir O`` with mlsteam.yml's defaults."""
    argv = ["train.py", "--data_dir", str(shapes_dir), "--output_dir", str(tmp_path)]
    proc = run_python(argv, SEG_TEMPLATE, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    test = [ln for ln in proc.stdout.splitlines() if ln.startswith("Test epoch=6 ")]
    dice = float(re.search(r" dice=([\d.]+)", test[0]).group(1))  # type: ignore[union-attr]
    assert dice >= STATED_DICE, test
    report = json.loads((tmp_path / "test_report.json").read_text())
    assert report["dice"] == pytest.approx(dice, abs=1e-5) and report["images"] == 60


@pytest.mark.slow  # the shared job fixture trains for ~25 s
def test_job_prints_metric_and_progress_lines(seg_job: tuple[Path, str]) -> None:
    _, stdout = seg_job
    lines = stdout.splitlines()
    metrics = [ln for ln in lines if ln.startswith(("Train ", "Validation ", "Test "))]
    assert metrics and all(METRIC.match(ln) for ln in metrics), metrics[:3]
    assert all(" dice=" in ln and " iou=" in ln for ln in metrics)
    steps = 15  # 240 images, batch 16
    train = [int(ln.split()[1].split("=")[1]) for ln in metrics if ln.startswith("Train")]
    assert train == [5, 10, 15, 20, 25, 30]
    assert [ln.split()[1] for ln in metrics if ln.startswith("Validation")] == [
        "epoch=1",
        "epoch=2",
    ]
    assert [ln.split()[:2] for ln in metrics if ln.startswith("Test")] == [["Test", "epoch=2"]]
    progress = [ln for ln in lines if ln.startswith("Progress ")]
    assert progress[0] == f"Progress epoch=1/2 step=0/{steps}"
    assert progress[-1] == f"Progress epoch=2/2 step={steps}/{steps}"
    assert all(re.fullmatch(rf"Progress epoch=[12]/2 step=\d+/{steps}", ln) for ln in progress)


@pytest.mark.slow  # the shared job fixture trains for ~25 s
def test_job_writes_model_onnx_that_agrees_and_overlays(
    seg_job: tuple[Path, str], shapes_dir: Path
) -> None:
    out, _ = seg_job
    for name in (
        "model.pt",
        "model.onnx",
        "config.yml",
        "best.pt",
        "checkpoint.pt",
        "test_report.json",
    ):
        assert (out / name).is_file(), name
    model, meta = load_segmenter(config=out / "config.yml")
    assert meta["class_names"] == ["background", "foreground"] and meta["mask_mode"] == "binary"
    x = torch.stack(
        [
            torch.from_numpy(np.array(Image.open(p), np.float32) / 255)[None]
            for p in sorted((shapes_dir / "test" / "images").glob("*.png"))[:4]
        ]
    )
    with torch.inference_mode():
        expected = model(x).numpy()
    got = ort.InferenceSession(str(out / "model.onnx")).run(None, {"input": x.numpy()})[0]
    assert got.shape == (4, 2, 64, 64)
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=1e-3)
    overlays = sorted((out / "overlays").glob("*.png"))
    assert [p.name for p in overlays] == [f"{n:04d}.png" for n in range(8)]
    with Image.open(overlays[0]) as img:
        assert img.size == (3 * 192 + 2 * 2 * 3, 192) and img.mode == "RGB"
        red = np.array(img)[..., 0].astype(int) - np.array(img)[..., 1]
        assert (red > 60).sum() > 100  # the tinted masks are there


@pytest.mark.slow  # the shared job fixture trains for ~25 s
def test_job_writes_tensorboard(seg_job: tuple[Path, str]) -> None:
    events = EventAccumulator(str(seg_job[0] / "tensorboard")).Reload()
    tags = events.Tags()
    assert {"Train/dice", "Train/iou", "Validation/dice", "Validation/iou", "Test/dice"} <= set(
        tags["scalars"]
    )
    assert {"Train/samples", "Validation/predictions"} <= set(tags["images"])


@pytest.mark.slow
def test_predict_writes_a_mask_per_image(
    seg_job: tuple[Path, str], shapes_dir: Path, tmp_path: Path
) -> None:
    out, _ = seg_job
    images = tmp_path / "new" / "sub"
    images.mkdir(parents=True)
    for p in sorted((shapes_dir / "test" / "images").glob("*.png"))[:3]:
        Image.open(p).resize((96, 80)).save(images / f"{p.stem}.jpg")
    proc = run_python(
        [
            "predict.py",
            "--config",
            str(out / "config.yml"),
            "--input",
            str(tmp_path / "new"),
            "--output",
            str(tmp_path / "masks"),
            "--overlay",
        ],
        SEG_TEMPLATE,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Wrote 3 mask(s)" in proc.stdout
    masks = sorted((tmp_path / "masks" / "sub").glob("[0-9][0-9][0-9][0-9].png"))
    assert [p.stem for p in masks] == ["0000", "0001", "0002"]
    truth = (
        np.array(
            Image.open(shapes_dir / "test" / "masks" / "0000.png").resize(
                (96, 80), Image.Resampling.NEAREST
            )
        )
        > 0
    )
    with Image.open(masks[0]) as mask:
        assert mask.mode == "P" and mask.size == (96, 80)
        pred = np.array(mask)
    assert set(np.unique(pred)) <= {0, 1}
    assert 2 * (truth & (pred == 1)).sum() / (truth.sum() + (pred == 1).sum()) > 0.6
    assert (tmp_path / "masks" / "sub" / "0000_overlay.png").is_file()


@pytest.mark.slow
def test_sigterm_and_resume_continue_exactly(
    seg_lab: Path, shapes_dir: Path, tmp_path: Path
) -> None:
    params = {"num_epoch": 2, "max_steps_per_epoch": 4, "log_every": 2, "batch_size": 8}
    stopped = assert_resumes_exactly(seg_lab, shapes_dir, tmp_path, params, "Validation epoch=1 ")
    assert "epoch 1" in stopped or "epoch 2" in stopped, stopped


def test_mlsteam_params_are_train_flags_and_the_template_includes_cls(seg_lab: Path) -> None:
    config = parse_mlsteam((SEG_TEMPLATE / "mlsteam.yml").read_text())
    flags = {a.dest: a for a in build_parser()._actions}
    for name, values in config.grid().items():
        assert name in flags, name
        choices = flags[name].choices
        options = config.definitions[name].options if name in config.definitions else None
        if choices is not None:
            assert options is not None and sorted(map(str, options)) == sorted(choices), name
            assert all(str(v) in choices for v in values)
    assert {a.dest for a in cls_parser()._actions if a.dest in ("amp", "channels_last")} <= set(
        flags
    )
    defaults = build_parser().parse_args([])
    assert {k: getattr(defaults, k) for k in config.grid()} == {
        k: v[0] for k, v in config.grid().items()
    }  # standalone train.py trains as a default job does
    assert (seg_lab / "cls" / "stopping.py").is_file() and (seg_lab / "seg" / "main.py").is_file()
    assert not (seg_lab / "template.yml").exists()
    assert yaml.safe_load((SEG_TEMPLATE / "template.yml").read_text())["default_datasets"] == [
        "shapes"
    ]
