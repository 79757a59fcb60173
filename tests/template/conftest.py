"""Fixtures for the classification template: the real digits dataset, a lab copy,
and a job run the way the platform runs it (a subprocess with MLSTEAM_* set)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.dont_write_bytecode = True
REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "lab_templates" / "classification"
if str(TEMPLATE) not in sys.path:
    sys.path.insert(0, str(TEMPLATE))

from labyard.seed import SAMPLE_DATASETS  # noqa: E402


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSTEAM_")}
    env.update(
        {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}
    )
    return env


def run_python(argv: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """``python *argv`` in ``cwd`` with :func:`subprocess_env`, output captured as text."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sample_dataset(factory: pytest.TempPathFactory, name: str) -> Path:
    """A session's copy of Labyard's sample dataset ``name`` (``labyard.seed``)."""
    root = factory.mktemp("datasets") / name
    next(s for s in SAMPLE_DATASETS if s.name == name).write(root)
    return root


def platform_argv(lab: Path, overrides: dict[str, Any]) -> list[str]:
    """mlsteam.yml's command split like a shell, then ``--name value`` per param."""
    spec = yaml.safe_load((lab / "mlsteam.yml").read_text())
    argv = shlex.split(spec["command"])
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    for name, value in {**spec["params"], **overrides}.items():
        value = value[0] if isinstance(value, list) else value
        argv += [f"--{name}", str(value)]
    return argv


@dataclass
class JobRun:
    """A finished job: its folders, output and exit status."""

    lab: Path
    input_dir: Path
    output_dir: Path
    stdout: str
    stderr: str
    returncode: int


def run_job(tmp: Path, dataset: Path, overrides: dict[str, Any], timeout: int = 300) -> JobRun:
    """Copy the template as a lab, mount the dataset under input/, run like the platform."""
    lab, input_dir, output = tmp / "lab", tmp / "input", tmp / "output"
    shutil.copytree(TEMPLATE, lab, ignore=shutil.ignore_patterns("__pycache__"))
    input_dir.mkdir()
    output.mkdir()
    (input_dir / dataset.name).symlink_to(dataset, target_is_directory=True)
    env = subprocess_env(
        MLSTEAM_INPUT_DIR=str(input_dir), MLSTEAM_OUTPUT_DIR=str(output), MLSTEAM_LAB_DIR=str(lab)
    )
    proc = subprocess.run(
        platform_argv(lab, overrides),
        cwd=lab,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return JobRun(lab, input_dir, output, proc.stdout, proc.stderr, proc.returncode)


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_dataset(tmp_path_factory, "digits")


@pytest.fixture(scope="session")
def lenet_job(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> JobRun:
    """LeNet on digits for 5 epochs, run exactly as the platform runs a job."""
    job = run_job(tmp_path_factory.mktemp("job"), digits_dir, {"num_epoch": 5})
    assert job.returncode == 0, job.stderr[-3000:]
    return job
