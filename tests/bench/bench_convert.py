"""Benchmark of the dataset conversion template (a script, not a test).

    python -m tests.bench convert          # or: python -m tests.bench.bench_convert

Images/s of a whole conversion (`conversion.main.run`: scan, split, convert, write, summary)
against the plainest Pillow loop doing the same per image (open, convert, crop the centred
square, resize bilinear, save PNG) on the same files in the same run, each the best of
alternating repeats:

- digits: the bundled 1797 8x8 PNGs to 32x32 class folders (workers 1, and 2);
- photos: 300 synthetic 320x240 JPEGs to 64x64 class folders (JPEG draft decoding);
- tfrecord: digits into TFRecord shards vs the loop encoding PNG bytes only (the cost of
  the Example encoding and the pure-Python CRC-32C framing).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [
    str(REPO / "lab_templates" / "convert"),
    str(REPO / "lab_templates" / "classification"),
]
sys.dont_write_bytecode = True

from conversion.main import run  # noqa: E402
from conversion.options import parse_args  # noqa: E402

from labyard.seed.digits import write_digits_dataset  # noqa: E402


def write_photos(root: Path, count: int = 300) -> Path:
    """`count` 320x240 JPEG "photos" (gradients and noise) in 3 classes."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    for i in range(count):
        folder = root / f"c{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        base = np.stack([xx * (i % 7 + 1), yy * (i % 5 + 1), xx + yy], -1) % 256
        noisy = base + rng.integers(0, 40, base.shape)
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)
    return root


def template_rate(source: Path, work: Path, size: int, *flags: str) -> float:
    """Images/s of a whole conversion run."""
    out = work / "template"
    shutil.rmtree(out, ignore_errors=True)
    args = parse_args(
        ["--data_dir", str(source), "--output_dir", str(out), "--image_size", str(size), *flags]
    )
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its progress lines
        report = run(args)
    return int(report["source"]["images"]) / (time.perf_counter() - start)


def plain_rate(source: Path, work: Path, size: int, to_bytes: bool = False) -> float:
    """Images/s of the plainest loop: open, convert, centre crop, resize, save PNG."""
    out = work / "plain"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    paths = sorted(p for p in source.rglob("*") if p.is_file())
    for i, path in enumerate(paths):
        with Image.open(path) as src:
            img = src.convert("L" if src.mode == "L" else "RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
        img = img.resize((size, size), Image.Resampling.BILINEAR)
        if to_bytes:
            img.save(io.BytesIO(), format="PNG")
        else:
            target = out / path.parent.name / f"{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            img.save(target, format="PNG")
    return len(paths) / (time.perf_counter() - start)


def compare(a: Callable[[], float], b: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Best rate of `a` and of `b`, measured alternately after a warm-up of each."""
    a(), b()
    runs = [(a(), b()) for _ in range(repeats)]
    return max(r[0] for r in runs), max(r[1] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        digits = work / "digits"
        write_digits_dataset(digits)
        photos = write_photos(work / "photos")
        cases = [
            ("digits 32px, 1 worker ", digits, 32, ("--workers", "1"), False),
            ("digits 32px, 2 workers", digits, 32, ("--workers", "2"), False),
            ("photos 64px, 2 workers", photos, 64, ("--workers", "2"), False),
            (
                "digits tfrecord, 2 w. ",
                digits,
                32,
                ("--workers", "2", "--output_format", "tfrecord"),
                True,
            ),
        ]
        for label, source, size, flags, to_bytes in cases:
            ours, plain = compare(
                partial(template_rate, source, work, size, *flags),
                partial(plain_rate, source, work, size, to_bytes),
                repeats,
            )
            print(
                f"{label}  template {ours:7.0f} img/s   plain PIL loop {plain:7.0f} img/s"
                f"   ratio {ours / plain:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
