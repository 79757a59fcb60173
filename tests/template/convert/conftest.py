"""Fixtures for the conversion template: small class-folder datasets with known pixels,
an in-process run of convert.py, and a job run the way the platform runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from labyard.templates_catalog import copy_template, load_catalog
from tests.template.conftest import REPO, platform_argv, subprocess_env

CONVERT = REPO / "lab_templates" / "convert"
if str(CONVERT) not in sys.path:
    sys.path.insert(0, str(CONVERT))

from conversion.main import main  # noqa: E402

# Class "a": 10 wide images (40x20), class "b": 7 tall ones (12x30): each is three
# vertical bands, red | green | blue, the outer bands a quarter of the width each.
CLASS_SIZES = {"a": (10, (40, 20)), "b": (7, (12, 30))}


def banded(width: int, height: int, shade: int) -> Image.Image:
    """Red, green and blue vertical bands; `shade` marks the image in the blue channel
    of the green band (so every image differs)."""
    arr = np.zeros((height, width, 3), np.uint8)
    q = width // 4
    arr[:, :q, 0] = 255
    arr[:, q : width - q, 1] = 255
    arr[:, q : width - q, 2] = shade
    arr[:, width - q :, 2] = 255
    return Image.fromarray(arr)


def write_banded(root: Path, *, splits: bool = False) -> Path:
    """The two classes as <class>/<n>.png (or spread over train/ and test/)."""
    for name, (count, (w, h)) in CLASS_SIZES.items():
        for i in range(count):
            part = ("train" if i % 3 else "test") if splits else ""
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            banded(w, h, 10 * i).save(folder / f"{name}{i}.png")
    return root


@pytest.fixture
def banded_dir(tmp_path: Path) -> Path:
    return write_banded(tmp_path / "banded")


def convert(data: Path, out: Path, *flags: Any) -> int:
    """convert.py's main in this process; its exit status."""
    return main(["--data_dir", str(data), "--output_dir", str(out), *map(str, flags)])


def run_platform_job(tmp: Path, dataset: Path, overrides: dict[str, Any]) -> Any:
    """The template copied as a lab (with its includes), the dataset under input/, run as
    the platform runs a job (mlsteam.yml's command plus --name value per param)."""
    lab, input_dir, output = tmp / "lab", tmp / "input", tmp / "output"
    copy_template(load_catalog(REPO / "lab_templates")["convert"], lab)
    input_dir.mkdir()
    output.mkdir()
    (input_dir / dataset.name).symlink_to(dataset, target_is_directory=True)
    env = subprocess_env(
        MLSTEAM_INPUT_DIR=str(input_dir), MLSTEAM_OUTPUT_DIR=str(output), MLSTEAM_LAB_DIR=str(lab)
    )
    return subprocess.run(
        platform_argv(lab, overrides), cwd=lab, env=env, capture_output=True, text=True, timeout=120
    )
