"""Building the package writes nothing into the checkout: no build/, no labyard.egg-info/
(pip builds in the source tree since 21.3, and setuptools used to leave both behind)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


def _tracked_copy(target: Path) -> Path:
    """The files git tracks, as a clean clone would have them."""
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for raw in filter(None, names):
        source = ROOT / raw.decode()
        if source.is_file():
            (target / raw.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / raw.decode())
    return target


def test_a_wheel_build_leaves_the_source_tree_as_it_was(tmp_path: Path) -> None:
    tree = _tracked_copy(tmp_path / "src")
    before = sorted(p.relative_to(tree) for p in tree.rglob("*"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(tree),
        ],
        check=True,
        capture_output=True,
    )
    after = sorted(p.relative_to(tree) for p in tree.rglob("*"))
    assert after == before  # no build/, no *.egg-info, nothing else
    (wheel,) = wheels.glob("labyard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # the bundled folders still travel inside the package
    for part in (
        "labyard/templates/base.html",
        "labyard/migrations/env.py",
        "labyard/static/js/app.js",
    ):
        assert part in names
