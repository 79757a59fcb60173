"""Fixtures for the segmentation template: the shapes sample, a lab made by
copy_template, and a job run the way the platform runs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ..conftest import REPO, sample_dataset
from ..test_sigterm import finished_job, make_lab

SEG_TEMPLATE = REPO / "lab_templates" / "segmentation"
if str(SEG_TEMPLATE) not in sys.path:
    sys.path.insert(0, str(SEG_TEMPLATE))

JOB_PARAMS = {"num_epoch": 2, "log_every": 5}


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_dataset(tmp_path_factory, "shapes")


@pytest.fixture(scope="session")
def seg_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab folder Labyard creates from the template (seg/ plus the included cls/)."""
    return make_lab("segmentation", tmp_path_factory.mktemp("seglab") / "lab")


@pytest.fixture(scope="session")
def seg_job(
    tmp_path_factory: pytest.TempPathFactory, seg_lab: Path, shapes_dir: Path
) -> tuple[Path, str]:
    """(output folder, stdout) of a 2-epoch job run like the platform runs one."""
    return finished_job(
        seg_lab, shapes_dir, tmp_path_factory.mktemp("segjob") / "output", JOB_PARAMS
    )
