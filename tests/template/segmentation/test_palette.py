"""Multi-class masks as palette PNGs: the palette index is the class, names come from
classes.txt, predicted masks carry the dataset's palette."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from seg.main import main

from .conftest import SEG_TEMPLATE

PALETTE = [0, 0, 0, 200, 30, 30, 30, 160, 30]  # background black, bright red, dark green


def write_palette_dataset(root: Path, counts: dict[str, int], seed: int = 0) -> None:
    """32x32 mid-gray noise with bright squares (class 1) and dark discs (class 2)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    for split, count in counts.items():
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True)
        for n in range(count):
            image = rng.normal(128, 12, (32, 32))
            mask = np.zeros((32, 32), np.uint8)
            y, x = rng.integers(2, 14, 2)
            mask[y : y + 9, x : x + 9] = 1
            cy, cx = rng.integers(21, 28, 2)
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 < 16] = 2
            image[mask == 1] += 80
            image[mask == 2] -= 80
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
                root / split / "images" / f"{n}.png"
            )
            m = Image.fromarray(mask)
            m.putpalette(PALETTE)
            m.save(root / split / "masks" / f"{n}.png")
    (root / "classes.txt").write_text("background\nbright\ndark\n")


@pytest.fixture(scope="module")
def palette_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("palette") / "data"
    write_palette_dataset(root, {"train": 64, "test": 16})
    return root


def test_palette_masks_train_as_classes_and_predict_keeps_the_palette(
    palette_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = [
        "--data_dir",
        str(palette_dir),
        "--output_dir",
        str(out),
        "--image_size",
        "32",
        "--num_epoch",
        "5",
        "--batch_size",
        "8",
        "--device",
        "cpu",
        "--val_fraction",
        "0.125",
    ]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "palette masks, 3 classes (background, bright, dark)" in stdout
    test = next(ln for ln in stdout.splitlines() if ln.startswith("Test epoch=5 "))
    assert float(re.search(r" dice=([\d.]+)", test).group(1)) > 0.8, test  # type: ignore[union-attr]
    report = json.loads((out / "test_report.json").read_text())
    assert list(report["per_class_dice"]) == ["background", "bright", "dark"]
    assert min(report["per_class_dice"].values()) > 0.7
    spec = importlib.util.spec_from_file_location("seg_predict", SEG_TEMPLATE / "predict.py")
    predict = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(predict)  # type: ignore[union-attr]
    masks = tmp_path / "masks"
    argv = [
        "--model",
        str(out / "model.pt"),
        "--input",
        str(palette_dir / "test" / "images"),
        "--output",
        str(masks),
    ]
    assert predict.main(argv) == 0
    with Image.open(masks / "0.png") as img:
        assert img.mode == "P" and img.getpalette()[:9] == PALETTE  # type: ignore[index]
        pred = np.array(img)
    truth = np.array(Image.open(palette_dir / "test" / "masks" / "0.png"))
    assert set(np.unique(pred)) <= {0, 1, 2} and (pred == truth).mean() > 0.9


def test_a_class_index_missing_from_train_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    write_palette_dataset(root, {"train": 4, "val": 2})
    m = Image.open(root / "val" / "masks" / "0.png")
    arr = np.array(m)
    arr[0, 0] = 3
    bad = Image.fromarray(arr)
    bad.putpalette(PALETTE)
    bad.save(root / "val" / "masks" / "0.png")
    assert (
        main(["--data_dir", str(root), "--output_dir", str(tmp_path / "o"), "--device", "cpu"]) == 2
    )
    assert "val/ masks use class index 3, which no train/ mask has" in capsys.readouterr().err
