"""The perceptions sample and CSV validation: bad files fail naming file, row, column."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cls.data import DatasetLayoutError
from PIL import Image
from reg.data import read_splits, read_table
from reg.main import main

from labyard.seed.perceptions import make_scene, write_perceptions_dataset


def test_sample_is_deterministic_and_its_scores_follow_the_pixels(
    perceptions_dir: Path, tmp_path: Path
) -> None:
    write_perceptions_dataset(tmp_path / "again")
    for name in ("train.csv", "val.csv", "test.csv", "images/test/0007.png"):
        assert (tmp_path / "again" / name).read_bytes() == (perceptions_dir / name).read_bytes()
    names, table = read_table(perceptions_dir / "train.csv", "image", [])
    assert names == ["greenery", "brightness", "crowding"] and table.scores.shape == (800, 3)
    pixels = np.stack([np.asarray(Image.open(p)) for p in table.paths[:50]])
    assert np.allclose(table.scores[:50, 1], 10 * pixels.mean((1, 2, 3)) / 255, atol=1e-3)
    assert set(np.unique(table.scores[:, 2])) == {1.5 * k for k in range(7)}
    assert table.scores.std(0).min() > 0.8  # every score varies
    with pytest.raises(FileExistsError):
        write_perceptions_dataset(perceptions_dir)
    img, scores = make_scene(np.random.default_rng(1))
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and len(scores) == 3


ROW3, ROW5, ROW7 = (f"train.csv row {n} (line {n + 1})" for n in (3, 5, 7))
NAN = "is not a finite number"


@pytest.fixture
def small(perceptions_dir: Path, tmp_path: Path) -> Path:
    """A copy of perceptions with 40 training rows and no val/test (editable)."""
    root = tmp_path / "small"
    shutil.copytree(perceptions_dir / "images" / "train", root / "images" / "train")
    lines = (perceptions_dir / "train.csv").read_text().splitlines()[:41]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


def _edit(root: Path, line: int, text: str) -> None:
    lines = (root / "train.csv").read_text().splitlines()
    lines[line] = text
    (root / "train.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "line,text,message",
    [
        (0, "path,greenery,brightness,crowding", "train.csv: no column 'image' (columns: path,"),
        (5, "images/train/9999.png,1,2,3", f"{ROW5}: image 'images/train/9999.png' not found"),
        (7, "images/train/0006.png,1,bright,3", f"{ROW7}: score 'brightness' {NAN}: 'bright'"),
        (3, "images/train/0002.png,1,nan,3", f"{ROW3}: score 'brightness' {NAN}: 'nan'"),
        (2, "images/train/0001.png,1,2", "train.csv row 2 (line 3): 3 fields, the header has 4"),
    ],
)  # fmt: skip
def test_a_bad_csv_fails_naming_the_row(small: Path, line: int, text: str, message: str) -> None:
    _edit(small, line, text)
    with pytest.raises(DatasetLayoutError) as err:
        read_splits(small, "image", [], 0.1, 0)
    assert message in str(err.value)


def test_the_job_stops_with_the_message_and_status_2(
    small: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(small, 4, "images/train/0003.png,1,2,")
    assert main(["--data_dir", str(small), "--output_dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "error: train.csv row 4 (line 5): score 'crowding' is not a finite number: ''" in err
    with pytest.raises(DatasetLayoutError, match="no score column 'safety'"):
        read_splits(small, "image", ["safety"], 0.1, 0)
    with pytest.raises(DatasetLayoutError, match="has no train.csv"):
        read_splits(tmp_path, "image", [], 0.1, 0)


def test_val_is_held_out_from_train_without_val_csv(small: Path) -> None:
    names, tables = read_splits(small, "image", ["crowding"], 0.25, 0)
    assert names == ["crowding"] and [len(t.paths) for t in tables.values()] == [30, 10]
    assert not set(tables["train"].paths) & set(tables["val"].paths)
