"""Fixtures for the classification template's TensorFlow path: TensorFlow itself (a
failure under CI=true when it is missing, a skip elsewhere), a lab made by copy_template,
and LeNet jobs in both frameworks run the way the platform runs them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.services import ServiceMissing, require

from ..test_sigterm import make_lab, start_job

TF_PARAMS: dict[str, Any] = {"framework": "tensorflow", "num_epoch": 10, "log_every": 5}


def _tensorflow() -> None:
    for name in ("tensorflow", "tf2onnx"):
        if importlib.util.find_spec(name) is None:
            raise ServiceMissing(f"{name} is not installed: pip install -e '.[tensorflow]'")


@pytest.fixture(scope="session", autouse=True)
def tensorflow_installed() -> None:
    """Every test here needs TensorFlow and tf2onnx."""
    require(_tensorflow)


@pytest.fixture(scope="session")
def cls_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lab("classification", tmp_path_factory.mktemp("tf") / "lab")


def finished(lab: Path, dataset: Path, output: Path, params: dict[str, Any]) -> tuple[str, Path]:
    """Run a job to its end; (stdout, output folder)."""
    code, out, err = start_job(lab, dataset, output, params).finish()
    assert code == 0, (out[-2000:], err[-3000:])
    return out, output


@pytest.fixture(scope="session")
def tf_job(
    cls_lab: Path, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """LeNet on digits with TensorFlow, 10 epochs (the README's figure)."""
    return finished(cls_lab, digits_dir, tmp_path_factory.mktemp("tfjob") / "out", TF_PARAMS)
