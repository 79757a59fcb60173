"""A TensorFlow job of the classification template, run as the platform runs it: its
accuracy, its lines (the PyTorch path's, line for line), TensorBoard, SavedModel and
ONNX exports, SIGTERM + --resume, and the message when TensorFlow is missing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cls.data import decode_all, scan_dataset

from ..conftest import platform_argv, subprocess_env
from ..test_sigterm import STOPPED, start_job, terminate_after
from .conftest import TF_PARAMS, finished

NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?")
LINE_KINDS = ("Train ", "Validation ", "Test ", "Progress ", "Epoch ")


def skeleton(stdout: str) -> list[str]:
    """The platform's lines with every number replaced by N."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith(LINE_KINDS)]
    return [NUMBER.sub("N", ln) for ln in lines]


def test_lenet_reaches_the_stated_test_accuracy(tf_job: tuple[str, Path]) -> None:
    out, _ = tf_job
    test = re.search(r"^Test epoch=10 acc=([\d.]+) loss=", out, re.M)
    assert test is not None, out[-2000:]
    assert float(test.group(1)) >= 0.88  # the README's figure for TensorFlow LeNet
    assert "TensorFlow" in out and "policy float32" in out


def test_lines_are_the_pytorch_paths_line_for_line(
    cls_lab: Path, digits_dir: Path, tmp_path: Path
) -> None:
    params = {"num_epoch": 2, "log_every": 7}
    torch_out, _ = finished(cls_lab, digits_dir, tmp_path / "pt", params)
    tf_out, _ = finished(
        cls_lab, digits_dir, tmp_path / "tf", {**params, "framework": "tensorflow"}
    )
    assert len(skeleton(tf_out)) > 10
    assert skeleton(tf_out) == skeleton(torch_out)


def test_tensorboard_has_the_metrics(tf_job: tuple[str, Path]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tf_job[1] / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = set(acc.Tags()["tensors"])
    assert {"Train/loss", "Train/acc", "Validation/acc", "Test/acc"} <= tags, tags
    assert len(acc.Tensors("Validation/acc")) == 10


def test_saved_model_and_onnx_agree_on_the_test_set(
    tf_job: tuple[str, Path], digits_dir: Path
) -> None:
    import onnxruntime as ort
    import tensorflow as tf

    out = tf_job[1]
    test = scan_dataset(digits_dir).test
    assert test is not None
    images = decode_all(test, 1, 32).numpy().astype(np.float32) / 255.0
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    keras_logits = serve(input=tf.constant(images))["logits"].numpy()
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    (onnx_logits,) = session.run(["logits"], {"input": images})
    np.testing.assert_allclose(onnx_logits, keras_logits, rtol=1e-4, atol=1e-4)
    accuracy = float((onnx_logits.argmax(1) == np.asarray(test.labels)).mean())
    reported = re.search(r"^Test epoch=10 acc=([\d.]+)", tf_job[0], re.M)
    assert reported is not None and accuracy == pytest.approx(float(reported.group(1)), abs=1e-6)


@pytest.mark.slow
def test_sigterm_then_resume_equals_an_uninterrupted_run(
    cls_lab: Path, digits_dir: Path, tmp_path: Path, tf_job: tuple[str, Path]
) -> None:
    import tensorflow as tf

    cut = tmp_path / "cut"
    code, out, err = terminate_after(
        start_job(cls_lab, digits_dir, cut, TF_PARAMS), "Validation epoch=1 "
    )
    assert code == 143, (out[-2000:], err[-3000:])
    stopped = [ln for ln in out.splitlines() if ln.startswith("Stopped by SIGTERM")]
    assert len(stopped) == 1 and STOPPED.match(stopped[0]), out[-2000:]
    assert not (cut / "model.onnx").exists()
    resumed, _ = finished(cls_lab, digits_dir, cut, {**TF_PARAMS, "resume": "auto"})
    assert re.search(r"^Resume: continuing after epoch [1-9] ", resumed, re.M), resumed[:2000]
    straight = tf.train.load_checkpoint(str(tf_job[1] / "tf_checkpoint" / "epoch-10"))
    again = tf.train.load_checkpoint(str(cut / "tf_checkpoint" / "epoch-10"))
    names = straight.get_variable_to_shape_map()
    assert names == again.get_variable_to_shape_map()
    values = [n for n in names if n.endswith("VARIABLE_VALUE")]  # weights, slots, step
    assert len(values) >= 20, names
    assert all(np.array_equal(straight.get_tensor(n), again.get_tensor(n)) for n in values)


def test_a_tensorflow_job_without_tensorflow_fails_at_once(cls_lab: Path, tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'tf2onnx'):\n"
        "            raise ImportError(f'No module named {name!r} (hidden by the test)')\n"
        "sys.meta_path.insert(0, _Hide())\n"
    )
    argv = platform_argv(cls_lab, {"framework": "tensorflow", "data_dir": str(tmp_path)})
    env = subprocess_env(PYTHONPATH=str(hide))
    proc = subprocess.run(argv, cwd=cls_lab, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "pip install 'labyard[tensorflow]'" in proc.stderr and "runner image" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    # the PyTorch path of the same lab does not need TensorFlow
    argv = [sys.executable, "train.py", "--help"]
    assert subprocess.run(argv, cwd=cls_lab, env=env, capture_output=True).returncode == 0
