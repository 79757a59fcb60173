"""labyard.seed.digits: the real scikit-learn digits written in MLSteam's format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labyard.seed.digits import DATA_FILE, load_digits, write_digits_dataset


def test_data_file_is_the_sklearn_digits() -> None:
    images, labels = load_digits()
    assert DATA_FILE.stat().st_size < 100_000
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert images.max() == 255 and images.min() == 0
    # first sample of sklearn's digits (a zero), row 0: 0 0 5 13 9 1 0 0 in 0..16 units
    assert labels[0] == 0
    row = np.round(images[0, 0].astype(float) * 16 / 255).astype(int).tolist()
    assert row == [0, 0, 5, 13, 9, 1, 0, 0]


def test_written_layout_is_stratified_and_complete(digits_dir: Path) -> None:
    train = sorted(digits_dir.glob("train/*/*.png"))
    test = sorted(digits_dir.glob("test/*/*.png"))
    assert len(train) + len(test) == 1797
    assert {p.parent.name for p in train} == {str(d) for d in range(10)}
    for d in range(10):
        n_test = len(list((digits_dir / "test" / str(d)).glob("*.png")))
        n_all = n_test + len(list((digits_dir / "train" / str(d)).glob("*.png")))
        assert n_test == round(n_all * 0.2)
    names = {p.name for p in train} | {p.name for p in test}
    assert len(names) == 1797
    with Image.open(train[0]) as img:
        assert img.mode == "L" and img.size == (8, 8)


def test_split_is_deterministic_and_seeded(tmp_path: Path, digits_dir: Path) -> None:
    write_digits_dataset(tmp_path / "same", seed=0)
    write_digits_dataset(tmp_path / "other", seed=1)

    def listing(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.glob("test/*/*.png"))

    assert listing(tmp_path / "same") == listing(digits_dir)
    assert listing(tmp_path / "other") != listing(digits_dir)


def test_existing_destination_is_refused_and_nothing_left_behind(tmp_path: Path) -> None:
    dest = tmp_path / "digits"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_digits_dataset(dest)
    assert [p.name for p in tmp_path.iterdir()] == ["digits"]
    assert (dest / "keep.txt").read_text() == "mine"
