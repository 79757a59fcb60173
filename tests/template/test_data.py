"""Dataset layout validation, decoding, splits and loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cls.data import (
    DatasetLayoutError,
    FolderDataset,
    StreamLoader,
    TensorLoader,
    decode_all,
    detect_channels,
    scan_dataset,
    stratified_holdout,
)
from PIL import Image

from .conftest import TEMPLATE, run_python


def _image(path: Path, size: tuple[int, int] = (10, 12), mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(path)


def test_missing_train_folder_names_the_dataset(tmp_path: Path) -> None:
    _image(tmp_path / "ds" / "test" / "a" / "1.png")
    with pytest.raises(DatasetLayoutError, match=r"ds has no train/ folder"):
        scan_dataset(tmp_path / "ds")


def test_empty_class_names_the_class_folder(tmp_path: Path) -> None:
    _image(tmp_path / "ds" / "train" / "cat" / "1.png")
    (tmp_path / "ds" / "train" / "dog").mkdir()
    (tmp_path / "ds" / "train" / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetLayoutError, match=r"class folder .*train/dog has no images"):
        scan_dataset(tmp_path / "ds")


def test_no_class_folders_and_loose_images(tmp_path: Path) -> None:
    (tmp_path / "a" / "train").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"a/train has no class folders"):
        scan_dataset(tmp_path / "a")
    _image(tmp_path / "b" / "train" / "1.png")
    with pytest.raises(DatasetLayoutError, match=r"b/train holds images directly"):
        scan_dataset(tmp_path / "b")


def test_unknown_test_class_and_missing_dataset(tmp_path: Path) -> None:
    for cls in ("a", "b"):
        _image(tmp_path / "ds" / "train" / cls / "1.png")
    _image(tmp_path / "ds" / "test" / "c" / "1.png")
    with pytest.raises(DatasetLayoutError, match=r"test/c is not a class of train/"):
        scan_dataset(tmp_path / "ds")
    with pytest.raises(DatasetLayoutError, match=r"nowhere does not exist"):
        scan_dataset(tmp_path / "nowhere")


def test_train_py_reports_a_bad_layout_and_exits_nonzero(tmp_path: Path) -> None:
    _image(tmp_path / "ds" / "train" / "a" / "1.png")
    (tmp_path / "ds" / "train" / "b").mkdir()
    proc = run_python(
        ["train.py", "--data_dir", str(tmp_path / "ds"), "--output_dir", str(tmp_path / "out")],
        TEMPLATE,
        timeout=120,
    )
    assert proc.returncode == 2
    assert f"class folder {tmp_path / 'ds' / 'train' / 'b'} has no images" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_colour_images_of_any_size_are_resized(tmp_path: Path) -> None:
    for i, size in enumerate([(10, 12), (40, 30), (7, 7)]):
        _image(tmp_path / "ds" / "train" / "x" / f"{i}.png", size)
        _image(tmp_path / "ds" / "train" / "y" / f"{i}.jpg", size)
    _image(tmp_path / "ds" / "test" / "y" / "t.png", (5, 9))
    layout = scan_dataset(tmp_path / "ds")
    assert layout.classes == ["x", "y"] and len(layout.train) == 6 and layout.val is None
    assert layout.test is not None and layout.test.labels == [1]
    assert detect_channels(layout.train.paths) == 3
    images = decode_all(layout.train, 3, 16)
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.uint8


def test_grayscale_digits_and_stratified_holdout(digits_dir: Path) -> None:
    layout = scan_dataset(digits_dir)
    assert detect_channels(layout.train.paths) == 1
    keep, held = stratified_holdout(layout.train, 0.1, seed=3)
    assert len(keep) + len(held) == len(layout.train)
    assert not set(keep.paths) & set(held.paths)
    counts = np.bincount(held.labels, minlength=10)
    assert counts.min() >= 13 and counts.max() <= 15
    again = stratified_holdout(layout.train, 0.1, seed=3)[1]
    assert again.paths == held.paths
    assert stratified_holdout(layout.train, 0.1, seed=4)[1].paths != held.paths


def test_streamed_batches_equal_in_memory_batches(digits_dir: Path) -> None:
    split = scan_dataset(digits_dir).test
    assert split is not None
    images = decode_all(split, 1, 16)
    labels = torch.tensor(split.labels)
    memory = TensorLoader(images, labels, 50, shuffle=True, seed=7)
    stream = StreamLoader(
        FolderDataset(split, 1, 16), 50, shuffle=True, seed=7, rank=0, world=1, workers=2, pin=False
    )
    for epoch in (0, 1):
        memory.set_epoch(epoch)
        stream.set_epoch(epoch)
        pairs = list(zip(memory, stream, strict=True))
        assert len(pairs) == len(memory) == len(stream) == 8
        for (xm, ym), (xs, ys) in pairs:
            assert torch.equal(xm, xs) and torch.equal(ym, ys)
    first = [y for _, y in memory]
    memory.set_epoch(2)
    assert not all(torch.equal(a, b) for a, b in zip(first, [y for _, y in memory], strict=True))
