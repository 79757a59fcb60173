"""The shapes sample dataset, and how the template reads datasets (and refuses bad ones)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from seg.main import main

from labyard.seed.shapes import SPLITS, write_shapes_dataset


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.png")):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_shapes_is_deterministic_complete_and_clb_style(shapes_dir: Path, tmp_path: Path) -> None:
    for split, count in SPLITS.items():
        assert len(list((shapes_dir / split / "images").glob("*.png"))) == count
        assert len(list((shapes_dir / split / "masks").glob("*.png"))) == count
    again = tmp_path / "again"
    write_shapes_dataset(again)
    assert digest(again) == digest(shapes_dir)
    masks = [
        np.array(Image.open(p)) for p in sorted((shapes_dir / "train" / "masks").glob("*.png"))
    ]
    labels = set(np.unique(np.concatenate([m.ravel() for m in masks])).tolist())
    assert {0, 1, 2, 3} <= labels  # background, blobs, objects labelled uniquely
    assert 0.03 < np.mean([(m > 0).mean() for m in masks]) < 0.3
    with pytest.raises(FileExistsError):
        write_shapes_dataset(again)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def _pair(folder: Path, name: str, size: tuple[int, int] = (32, 32)) -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 90).save(folder / "images" / f"{name}.png")
    Image.new("L", size, 0).save(folder / "masks" / f"{name}.png")


def _bad_layout(root: Path, case: str) -> None:
    train = root / "train"
    if case == "no train":
        _pair(root / "training", "a")
    elif case == "no masks folder":
        _pair(train, "a")
        (train / "masks" / "a.png").unlink()
        (train / "masks").rmdir()
    elif case == "image without mask":
        _pair(train, "a")
        _pair(train, "b")
        (train / "masks" / "b.png").unlink()
    elif case == "mask of another size":
        _pair(train, "a")
        Image.new("L", (20, 32)).save(train / "masks" / "a.png")
    elif case == "no images":
        (train / "images").mkdir(parents=True)
        (train / "masks").mkdir()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no train", "has no train/ folder; expected"),
        ("no masks folder", "has no masks/ folder"),
        ("image without mask", r"1 image\(s\) in .* have no mask .*first: b"),
        ("mask of another size", "is 20x32 but its image"),
        ("no images", "has no images"),
    ],
)
def test_bad_layouts_fail_with_a_clear_message(
    case: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    _bad_layout(root, case)
    code = main(["--data_dir", str(root), "--output_dir", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and re.search(message, err), err
