"""train.py run as the platform runs a job, and what it leaves behind; predict.py;
ONNX; flags, config files and mlsteam.yml agreeing with each other."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from cls.config import build_parser, parse_args, parse_with
from cls.data import decode_all, scan_dataset
from cls.export import load_model
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from .conftest import TEMPLATE, JobRun, run_job, run_python

METRIC = re.compile(r"^(Train|Validation|Test) (step|iter|epoch)=(\d+)( [a-z_]+=[-+.\deE]+)+$")


def test_job_prints_metrics_progress_and_summary(lenet_job: JobRun) -> None:
    lines = lenet_job.stdout.splitlines()
    metrics = [ln for ln in lines if ln.startswith(("Train ", "Validation ", "Test "))]
    assert metrics and all(METRIC.match(ln) for ln in metrics), metrics[:3]
    train = [ln for ln in metrics if ln.startswith("Train step=")]
    assert train[0].startswith("Train step=10 loss=") and " acc=" in train[0]
    assert [ln.split()[1] for ln in metrics if ln.startswith("Validation")] == [
        f"epoch={e}" for e in range(1, 6)
    ]
    progress = [ln for ln in lines if ln.startswith("Progress ")]
    assert progress[-1] == "Progress epoch=5/5 step=21/21"  # step counts within the epoch
    assert all(re.fullmatch(r"Progress epoch=\d+/5 step=\d+/21", ln) for ln in progress)
    start, end = lines.index("==== Model summary ===="), lines.index("==== End of summary ====")
    assert "Total params: 82,826" in lines[start:end]
    test_line = next(ln for ln in metrics if ln.startswith("Test "))
    acc = float(re.search(r" acc=([\d.]+)", test_line).group(1))  # type: ignore[union-attr]
    assert acc >= 0.85, test_line


def test_job_writes_models_checkpoints_and_reports(lenet_job: JobRun) -> None:
    out = lenet_job.output_dir
    for name in (
        "model.pt",
        "model.onnx",
        "best.pt",
        "checkpoint.pt",
        "confusion_matrix.png",
        "confusion_matrix.json",
    ):
        assert (out / name).is_file(), name
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 5 and {"model", "optimizer", "scheduler", "rng"} <= set(ckpt)
    report = json.loads((out / "confusion_matrix.json").read_text())
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 359
    assert report["accuracy"] == pytest.approx(np.trace(matrix) / 359)
    assert min(report["per_class_accuracy"].values()) > 0.5
    with Image.open(out / "confusion_matrix.png") as img:
        assert img.size[0] > 100 and len(img.convert("L").getcolors(maxcolors=256) or []) > 5
    _, meta = load_model(out / "model.pt")
    assert meta["class_names"] == [str(d) for d in range(10)] and meta["in_channels"] == 1
    assert meta["args"]["network"] == "lenet" and meta["args"]["num_epoch"] == 5


def test_job_writes_tensorboard_scalars_and_images(lenet_job: JobRun) -> None:
    events = EventAccumulator(str(lenet_job.output_dir / "tensorboard")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "Train/loss",
        "Train/acc",
        "Train/lr",
        "Validation/loss",
        "Validation/acc",
        "Test/acc",
        "Test/loss",
        "Test/acc_class_3",
    } <= scalars
    assert {"Train/samples", "Test/confusion_matrix"} <= set(events.Tags()["images"])
    assert len(events.Scalars("Validation/acc")) == 5


def test_a_pytorch_job_never_loads_tensorflow(tmp_path: Path) -> None:
    """TensorBoard's writer would import TensorFlow whenever it is installed (it is in the
    test environment, for the TensorFlow path): a PyTorch job keeps it out."""
    assert importlib.util.find_spec("tensorflow") is not None, "the check needs TensorFlow"
    script = (
        "import sys; from pathlib import Path; from cls.reporting import Reporter\n"
        f"rep = Reporter(Path({str(tmp_path / 'tb')!r}))\n"
        "rep.metrics('Train', 'step', 3, loss=0.5); rep.close()\n"
        "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n"
    )
    proc = run_python(["-c", script], TEMPLATE)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tensorflow loaded: False" in proc.stdout
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("Train/loss")] == [(3, 0.5)]


def test_onnx_agrees_with_pytorch(lenet_job: JobRun, digits_dir: Path) -> None:
    model, meta = load_model(lenet_job.output_dir / "model.pt")
    split = scan_dataset(digits_dir).test
    assert split is not None
    x = decode_all(split, 1, meta["image_size"])[:100].float() / 255.0
    session = ort.InferenceSession(str(lenet_job.output_dir / "model.onnx"))
    onnx_logits = session.run(None, {"input": x.numpy()})[0]
    with torch.inference_mode():
        torch_logits = model(x).numpy()
    assert onnx_logits.shape == (100, 10)
    assert np.abs(onnx_logits - torch_logits).max() < 1e-4


def test_predict_writes_a_csv(lenet_job: JobRun, digits_dir: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "preds" / "out.csv"
    proc = run_python(
        [
            "predict.py",
            "--model",
            str(lenet_job.output_dir / "model.pt"),
            "--input",
            str(digits_dir / "test"),
            "--output",
            str(csv_path),
        ],
        lenet_job.lab,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 359 and set(rows[0]) == {"path", "predicted_class", "confidence"}
    assert all(0.0 < float(r["confidence"]) <= 1.0 for r in rows)
    correct = sum(r["path"].split("/")[0] == r["predicted_class"] for r in rows)
    assert correct / len(rows) >= 0.85


def test_unknown_flag_fails_loudly(tmp_path: Path, digits_dir: Path) -> None:
    proc = run_python(
        [
            "train.py",
            "--data_dir",
            str(digits_dir),
            "--output_dir",
            str(tmp_path),
            "--num_epochs",
            "3",
        ],
        TEMPLATE,
        timeout=120,
    )
    assert proc.returncode == 2 and "unrecognized arguments: --num_epochs 3" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_mlsteam_yml_params_are_flags_with_the_same_options() -> None:
    spec = yaml.safe_load((TEMPLATE / "mlsteam.yml").read_text())
    assert spec["command"] == "python train.py"
    actions = {a.dest: a for a in build_parser()._actions}
    help_text = build_parser().format_help()
    for name, value in spec["params"].items():
        assert name in actions and f"--{name}" in help_text, name
        default = actions[name].default
        first = value[0] if isinstance(value, list) else value
        assert type(default)(first) == default, name  # the file shows train.py's defaults
    for name, definition in spec["params_definition"].items():
        if "options" not in definition:  # a search range around train.py's default
            assert definition["min"] <= actions[name].default <= definition["max"], name
            continue
        assert list(definition["options"]) == list(actions[name].choices or []), name
    manifest = yaml.safe_load((TEMPLATE / "template.yml").read_text())
    assert manifest["title"] == "Image Classification"
    assert manifest["default_datasets"] == ["digits"] and manifest["default_flavor"] == "cpu"


def test_config_file_with_flags_overriding(tmp_path: Path, digits_dir: Path) -> None:
    conf = tmp_path / "conf.yml"
    conf.write_text(
        yaml.safe_dump(
            {
                "network": ["resnet18"],
                "lr": 0.2,
                "num_epoch": 7,
                "compile": False,
                "data_dir": str(digits_dir),
            }
        )
    )
    args = parse_args(["--config", str(conf), "--lr", "0.01", "--output_dir", str(tmp_path)])
    assert (args.network, args.lr, args.num_epoch, args.compile) == ("resnet18", 0.01, 7, False)
    args = parse_args(["--config", str(TEMPLATE / "mlsteam.yml"), "--data_dir", "x"])
    assert args.network == "lenet" and args.small_chunk == 1
    conf.write_text("networks: lenet\n")
    with pytest.raises(SystemExit):
        parse_args(["--config", str(conf), "--data_dir", "x"])


def test_data_dir_defaults_follow_the_job_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in" / "flowers" / "train").mkdir(parents=True)
    monkeypatch.setenv("MLSTEAM_INPUT_DIR", str(tmp_path / "in"))
    monkeypatch.setenv("MLSTEAM_OUTPUT_DIR", str(tmp_path / "out"))
    args = parse_args([])
    assert args.data_dir == str(tmp_path / "in" / "flowers")
    assert args.output_dir == str(tmp_path / "out")
    (tmp_path / "in" / "digits").mkdir()
    assert parse_args([]).data_dir == str(tmp_path / "in" / "digits")
    assert parse_args(["--dataset", "flowers"]).data_dir == str(tmp_path / "in" / "flowers")
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "../etc"])


def test_each_template_names_its_own_default_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """parse_with's default sample and the marker of a dataset folder are per template."""
    root = tmp_path / "in"
    for name in ("a_csv", "b_folders", "digits"):
        (root / name).mkdir(parents=True)
    (root / "a_csv" / "train.csv").write_text("image,score\n")
    (root / "b_folders" / "train").mkdir()
    monkeypatch.setenv("MLSTEAM_INPUT_DIR", str(root))
    for default, marker, expected in [
        ("digits", "train", "digits"),
        ("shapes", "train", "b_folders"),  # no shapes/: the first folder with train/
        ("perceptions", "train.csv", "a_csv"),  # no perceptions/: the first with train.csv
    ]:
        args = parse_with(build_parser(), [], default_dataset=default, marker=marker)
        assert args.data_dir == str(root / expected), default
    (root / "shapes").mkdir()
    args = parse_with(build_parser(), ["--resume", ""], default_dataset="shapes")
    assert args.data_dir == str(root / "shapes") and args.resume is None


def test_ddp_on_cpu_with_two_processes(tmp_path: Path, digits_dir: Path) -> None:
    out = tmp_path / "out"
    proc = run_python(
        [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "train.py",
            "--data_dir",
            str(digits_dir),
            "--output_dir",
            str(out),
            "--num_epoch",
            "2",
            "--batch_size",
            "32",
            "--workers",
            "0",
        ],
        TEMPLATE,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    assert proc.stdout.count("Validation epoch=1 ") == 1  # rank 0 prints
    assert "Progress epoch=2/2 step=21/21" in proc.stdout  # 648 images per rank / 32
    test_line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("Test "))
    assert float(test_line.split("acc=")[1].split()[0]) > 0.5
    assert (out / "model.pt").is_file() and (out / "model.onnx").is_file()


def test_platform_command_with_a_colour_dataset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "shapes"
    for split, n in (("train", 24), ("val", 6), ("test", 6)):
        for c, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
            for i in range(n):
                img = rng.integers(0, 60, (20 + i % 5, 18, 3), dtype=np.uint8)
                img[4:12, 4:12] = colour
                (data / split / f"c{c}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(data / split / f"c{c}" / f"{i}.jpg")
    job: JobRun = run_job(
        tmp_path,
        data,
        {
            "num_epoch": 2,
            "network": "mobilenet_v2",
            "image_size": 24,
            "batch_size": 8,
            "memory_saving_method": "recomputing",
            "small_chunk": 2,
            "aug_list": "both",
        },
    )
    assert job.returncode == 0, job.stderr[-3000:]
    assert "2 classes, 3 channel(s), train 48, val 12, test 12 images" in job.stdout
    assert "Validation epoch=2 " in job.stdout and "Test epoch=2 " in job.stdout
    assert (job.output_dir / "model.onnx").is_file()
