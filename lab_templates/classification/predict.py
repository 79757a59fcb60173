"""Predict classes for a folder of images with a trained model.pt.

    python predict.py --model /mlsteam/output/model.pt --input DIR [--output preds.csv]

Writes a CSV with one row per image: path (relative to --input), predicted class,
confidence (softmax probability of that class).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from cls.data import IMAGE_EXTENSIONS, load_image  # noqa: E402
from cls.export import load_model  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="predict.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--model", required=True, help="model.pt written by train.py")
    p.add_argument("--input", required=True, help="an image or a folder (searched recursively)")
    p.add_argument("--output", default="predictions.csv", help="CSV file to write")
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    return p


def list_images(root: Path) -> list[Path]:
    """``root`` itself when it is an image file, else every image under it, sorted."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SystemExit(f"error: {root} does not exist")
    files = [
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    if not files:
        raise SystemExit(f"error: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {root}")
    return sorted(files)


def batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start : start + size]


def predict(
    model_path: Path, paths: list[Path], batch_size: int = 128, device: str = "cpu"
) -> list[tuple[Path, str, float]]:
    """(path, class name, confidence) for every image."""
    model, meta = load_model(model_path, device)
    channels, size, names = meta["in_channels"], meta["image_size"], meta["class_names"]
    rows: list[tuple[Path, str, float]] = []
    with torch.inference_mode():
        for chunk in batches(paths, batch_size):
            x = torch.stack([torch.from_numpy(load_image(p, channels, size)) for p in chunk])
            probs = model(x.to(device).float() / 255.0).softmax(1)
            conf, pred = probs.max(1)
            rows += [
                (p, names[int(i)], float(c)) for p, i, c in zip(chunk, pred, conf, strict=True)
            ]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.input)
    rows = predict(Path(args.model), list_images(root), args.batch_size, args.device)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "predicted_class", "confidence"])
        for path, name, conf in rows:
            rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
            writer.writerow([rel, name, f"{conf:.6f}"])
    print(f"Wrote {len(rows)} predictions to {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
