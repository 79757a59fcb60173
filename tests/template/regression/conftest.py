"""Fixtures for the regression template: the perceptions sample, a lab made the way
Labyard makes one (copy_template with ``include: [classification/cls]``) and a job run
the way the platform runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ..conftest import REPO, sample_dataset
from ..test_sigterm import finished_job, make_lab

TEMPLATE = REPO / "lab_templates" / "regression"
if str(TEMPLATE) not in sys.path:
    sys.path.insert(0, str(TEMPLATE))

R2_STATED = 0.8  # the README's figure: mean test R² of the defaults on perceptions


@pytest.fixture(scope="session")
def perceptions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_dataset(tmp_path_factory, "perceptions")


@pytest.fixture(scope="session")
def reg_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lab("regression", tmp_path_factory.mktemp("reglab") / "lab")


@pytest.fixture(scope="session")
def reg_job(
    tmp_path_factory: pytest.TempPathFactory, reg_lab: Path, perceptions_dir: Path
) -> tuple[Path, str]:
    """The template's defaults (mlsteam.yml) on perceptions: (output folder, stdout)."""
    return finished_job(reg_lab, perceptions_dir, tmp_path_factory.mktemp("regjob") / "output", {})
