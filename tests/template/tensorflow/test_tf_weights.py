"""A TensorFlow job starts from registered weights by name: registering a TensorFlow job's
model.onnx keeps its best.weights.h5 (labyard.weights.detect), the platform mounts the
copy at $MLSTEAM_WEIGHTS_DIR/<name>, and tfcls loads it from there; PyTorch-only weights
fail clearly."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labyard.weights.detect import inspect_model

from ..conftest import platform_argv, subprocess_env


def _registered_copy(output: Path, weights_dir: Path, name: str) -> Path:
    """What registering ``output``'s model.onnx copies, placed where a job sees it."""
    found = inspect_model(output, "model.onnx")
    assert found.copy == ["model.onnx", "best.weights.h5"]
    folder = weights_dir / name
    folder.mkdir(parents=True)
    for rel in found.copy:
        shutil.copy(output / rel, folder / rel)
    return folder


def test_a_tensorflow_job_starts_from_registered_tensorflow_weights(
    tf_job: tuple[str, Path], cls_lab: Path, digits_dir: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "weights"
    _registered_copy(tf_job[1], weights, "tf-digits")
    (input_dir := tmp_path / "input").mkdir()
    (input_dir / "digits").symlink_to(digits_dir, target_is_directory=True)
    params = {"framework": "tensorflow", "num_epoch": 1, "max_steps_per_epoch": 1, "lr": 1e-6}
    env = subprocess_env(
        MLSTEAM_INPUT_DIR=str(input_dir),
        MLSTEAM_OUTPUT_DIR=str(tmp_path / "out"),
        MLSTEAM_WEIGHTS_DIR=str(weights),
    )
    argv = platform_argv(cls_lab, {**params, "weights": "tf-digits"})
    run = subprocess.run(argv, cwd=cls_lab, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-3000:])
    assert f"Weights: loaded {weights / 'tf-digits' / 'best.weights.h5'}" in run.stdout
    val = re.search(r"^Validation epoch=1 .*acc=([\d.]+)", run.stdout, re.M)
    assert val and float(val.group(1)) >= 0.85, run.stdout[-2000:]  # from scratch: about 0.1


@pytest.fixture
def tf_checkpoint() -> object:
    from tfcls import checkpoint

    return checkpoint


def test_tensorflow_weights_resolve_by_name_and_pytorch_ones_fail_clearly(
    tf_checkpoint: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve = tf_checkpoint.resolve_weights  # type: ignore[attr-defined]
    keras = tmp_path / "keras"
    keras.mkdir()
    (keras / "best.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    (keras / "model.onnx").write_bytes(b"onnx")
    torch_only = tmp_path / "torch"
    torch_only.mkdir()
    (torch_only / "model.pt").write_bytes(b"PK")
    (torch_only / "model.onnx").write_bytes(b"onnx")
    monkeypatch.setenv("MLSTEAM_WEIGHTS_DIR", str(tmp_path))
    assert resolve("keras") == keras / "best.weights.h5"
    assert resolve(str(keras / "best.weights.h5")) == keras / "best.weights.h5"
    with pytest.raises(ValueError, match=r"no single Keras weights file .*model.pt is PyTorch"):
        resolve("torch")
    with pytest.raises(ValueError, match=r"takes a \.weights\.h5 .*PyTorch file"):
        resolve(str(torch_only / "model.pt"))
    with pytest.raises(FileNotFoundError, match="no registered weights of that name"):
        resolve("other")
