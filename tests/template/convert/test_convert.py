"""convert.py: split sizes (the documented rounding), both resize methods, determinism
with a seed, both source layouts, refused inputs, and a run as the platform runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from conversion.options import Part, build_parser, parse_split
from conversion.source import allocate
from PIL import Image

from labyard.datasets.insight import analyse
from labyard.mlsteam import parse_mlsteam
from labyard.templates_catalog import load_catalog

from .conftest import CONVERT, REPO, convert, run_platform_job, write_banded


def files_by_part(dataset: Path) -> dict[str, list[str]]:
    """part -> sorted '<class>/<file>' of a class-folder output."""
    return {
        part.name: sorted(p.relative_to(part).as_posix() for p in part.glob("*/*.png"))
        for part in sorted(dataset.iterdir())
        if part.is_dir()
    }


def counts(dataset: Path) -> dict[str, dict[str, int]]:
    return {
        part: {c: sum(f.startswith(f"{c}/") for f in files) for c in ("a", "b")}
        for part, files in files_by_part(dataset).items()
    }


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


@pytest.mark.parametrize(
    ("split", "expected"),
    [
        # a: 10 -> 8 / 1 / 1; b: 7 -> 5.6 0.7 0.7 -> floors 5 0 0, the 2 left over go to
        # the largest remainders (val .7, test .7; train's .6 misses out)
        ("train:80 val:10 test:10", {"train": (8, 5), "val": (1, 1), "test": (1, 1)}),
        # a: 7 / 3; b: 4.9 2.1 -> 4 2, the 1 left over to train (.9)
        ("train:70,val:30", {"train": (7, 5), "val": (3, 2)}),
    ],
)
def test_split_sizes_per_class_follow_the_documented_rounding(
    banded_dir: Path, tmp_path: Path, split: str, expected: dict[str, tuple[int, int]]
) -> None:
    assert convert(banded_dir, tmp_path / "out", "--split", split) == 0
    got = counts(tmp_path / "out" / "dataset")
    assert got == {p: {"a": a, "b": b} for p, (a, b) in expected.items()}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {p: v["images"] for p, v in summary["parts"].items()} == {
        p: a + b for p, (a, b) in expected.items()
    }
    assert list(summary["parts"]) == list(expected)  # in the order the split names them
    assert summary["source"] == {"path": "banded", "layout": "classes", "images": 17}


def test_allocate_always_places_every_image_once() -> None:
    three = parse_split("train:80 val:10 test:10")
    assert allocate(1, three) == [1, 0, 0]
    assert allocate(19, three) == [15, 2, 2]  # 15.2 1.9 1.9
    thirds = parse_split("a:33.4 b:33.3 c:33.3")
    assert allocate(3, thirds) == [1, 1, 1]
    assert allocate(2, thirds) == [1, 1, 0]  # equal remainders: the part named first
    for n in range(60):
        for parts in (three, thirds, [Part("x", 100.0)]):
            got = allocate(n, parts)
            assert sum(got) == n
            assert all(abs(c - n * p.percent / 100) < 1 for c, p in zip(got, parts, strict=True))


def test_center_crop_keeps_the_middle_square(banded_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flags = ("--resize_method", "CENTER_CROP_THEN_SCALE", "--image_size", 8)
    assert convert(banded_dir, out, *flags) == 0
    images = sorted((out / "dataset").glob("*/*/*.png"))
    assert len(images) == 17
    for path in images:
        with Image.open(path) as img:
            assert img.size == (8, 8) and img.mode == "RGB"
        arr = pixels(path)
        if path.parent.name == "a":  # 40x20: the middle 20x20 is the green band only
            assert (arr[..., 0] == 0).all() and (arr[..., 1] == 255).all()
        else:  # 12x30: the middle 12x12 still has red | green | blue
            assert tuple(arr[4, 0]) == (255, 0, 0) and arr[4, 7, 2] == 255


def test_square_margin_pads_with_black_and_cuts_nothing(banded_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flags = ("--resize_method", "SQUARE_MARGIN_THEN_SCALE", "--image_size", 8)
    assert convert(banded_dir, out, *flags) == 0
    for path in sorted((out / "dataset").glob("*/*/*.png")):
        arr = pixels(path)
        assert arr.shape == (8, 8, 3)
        if path.parent.name == "a":  # 40x20 on 40x40: black rows above and below
            assert (arr[[0, -1]] == 0).all() and arr[1:-1].max() == 255
            assert tuple(arr[4, 0]) == (255, 0, 0) and tuple(arr[4, 7]) == (0, 0, 255)
        else:  # 12x30 on 30x30: black columns left and right, all three bands inside
            assert (arr[:, [0, 1, -2, -1]] == 0).all()  # the image spans columns 2.4 to 5.6
            assert arr[4, 2, 0] > arr[4, 2, 1] and arr[4, 5, 2] > arr[4, 5, 1]
            assert arr[4, 3:5, 1].min() > 150


def test_none_keeps_sizes_and_grayscale_stays_one_channel(tmp_path: Path) -> None:
    source = write_banded(tmp_path / "src")
    Image.new("L", (9, 5), 77).save(source / "a" / "gray.png")
    out = tmp_path / "out"
    assert convert(source, out, "--resize_method", "NONE", "--split", "all:100") == 0
    sizes = {}
    for path in (out / "dataset" / "all").glob("*/*.png"):
        with Image.open(path) as img:
            sizes[path.name] = (img.size, img.mode)
    assert sizes["a0.png"] == ((40, 20), "RGB") and sizes["b3.png"] == ((12, 30), "RGB")
    assert sizes["gray.png"] == ((9, 5), "L") and len(sizes) == 18


def test_same_seed_same_split_other_seed_other_split(digits_dir: Path, tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("first", 0), ("again", 0), ("other", 1)):
        assert convert(digits_dir, tmp_path / name, "--seed", seed, "--workers", 2) == 0
        runs[name] = files_by_part(tmp_path / name / "dataset")
    assert runs["first"] == runs["again"]
    assert runs["first"] != runs["other"]
    assert {p: len(f) for p, f in runs["first"].items()} == {"train": 1438, "val": 180, "test": 179}
    assert {p: len(f) for p, f in runs["other"].items()} == {"train": 1438, "val": 180, "test": 179}
    common = sorted(set(runs["first"]["train"]) & set(runs["other"]["train"]))
    assert 1000 < len(common) < 1438  # about 80% of 80% stay in train
    for rel in common[::100]:  # an image converts to the same bytes whichever part it is in
        a, b = (tmp_path / run / "dataset" / "train" / rel for run in ("first", "other"))
        assert a.read_bytes() == b.read_bytes()
    first, again = (sorted((tmp_path / r / "dataset").rglob("*.png")) for r in ("first", "again"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    union = [f for files in runs["first"].values() for f in files]
    assert len(union) == len(set(union)) == 1797  # every image exactly once


def test_split_layout_is_pooled_and_split_anew(tmp_path: Path) -> None:
    flat = write_banded(tmp_path / "flat")
    split = write_banded(tmp_path / "split", splits=True)
    assert convert(flat, tmp_path / "o1") == 0 and convert(split, tmp_path / "o2") == 0
    assert counts(tmp_path / "o1" / "dataset") == counts(tmp_path / "o2" / "dataset")
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert summary["source"]["layout"] == "splits" and summary["source"]["images"] == 17


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--split", "train:80 val:10 test:5"], "must sum to 100, got 95"),
        (["--split", "train:80 train:20"], "must be distinct"),
        (["--split", "train=80 val=20"], "is not name:percent"),
        (["--split", "train:100 val:0"], "must be > 0"),
        (["--resize_method", "STRETCH"], "invalid choice: 'STRETCH'"),
        (["--image_size", "0"], "must be >= 1"),
    ],
)
def test_bad_options_stop_before_anything_is_written(
    banded_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list, message: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        convert(banded_dir, tmp_path / "out", *flags)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_datasets_are_refused_naming_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_banded(tmp_path / "src")
    (source / "empty").mkdir()
    out = tmp_path / "out"
    assert convert(source, out) == 2
    err = capsys.readouterr().err
    assert "class folder" in err and "empty has no images" in err
    assert not (out / "dataset").exists() and not (out / "dataset.partial").exists()
    (source / "empty").rmdir()
    (source / "a" / "broken.png").write_bytes(b"not a png")
    assert convert(source, out) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert not (out / "dataset").exists() and not (out / "dataset.partial").exists()
    (source / "a" / "broken.png").unlink()
    assert convert(source, out) == 0
    assert convert(source, out) == 2  # never over an earlier result
    assert "exists" in capsys.readouterr().err


def test_platform_job_converts_digits_with_progress_and_insight(
    digits_dir: Path, tmp_path: Path
) -> None:
    job = run_platform_job(tmp_path, digits_dir, {})
    assert job.returncode == 0, job.stderr[-3000:]
    lines = job.stdout.splitlines()
    progress = [ln for ln in lines if ln.startswith("Progress ")]
    assert all(re.fullmatch(r"Progress epoch=1/1 step=\d+/1797", ln) for ln in progress)
    assert progress[0].endswith("step=0/1797") and progress[-1].endswith("step=1797/1797")
    assert 50 <= len(progress) <= 200  # about every 1%: an ETA without flooding the log
    dataset = tmp_path / "output" / "dataset"
    with Image.open(next(dataset.glob("val/7/*.png"))) as img:
        assert img.size == (32, 32) and img.mode == "L"
    insight = analyse(dataset)  # what the platform shows for the new dataset
    assert insight.recognised and insight.classes == [str(d) for d in range(10)]
    assert {s.name: s.images for s in insight.splits} == {"train": 1438, "val": 180, "test": 179}
    assert insight.sizes == [("32x32", insight.sampled)]


def test_manifest_and_mlsteam_yml_match_the_flags() -> None:
    template = load_catalog(REPO / "lab_templates")["convert"]
    assert template.default_datasets == ("digits",) and template.default_flavor == "cpu"
    config = parse_mlsteam((CONVERT / "mlsteam.yml").read_text())
    flags = {a.dest: a for a in build_parser()._actions}
    for name, values in config.params.items():
        assert name in flags, name
        options = config.definitions.get(name)
        if options is not None and options.options and flags[name].choices:
            assert list(options.options) == list(flags[name].choices or []), name
        assert flags[name].default == values[0] or str(flags[name].default) == str(values[0])
    assert "," not in yaml.safe_load((CONVERT / "mlsteam.yml").read_text())["params"]["split"]
