"""Predict scores for a folder of images with a trained model.pt.

    python predict.py --model /mlsteam/output/model.pt --input DIR [--output preds.csv]

Writes a CSV with one row per image: its path (relative to --input) and one column
per score the model was trained on.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if not (HERE / "cls").is_dir():  # run from lab_templates/: use the classification template's
    sys.path.insert(1, str(HERE.parent / "classification"))

import torch  # noqa: E402
from cls.data import IMAGE_EXTENSIONS, load_image  # noqa: E402
from reg.export import load_model  # noqa: E402


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
    """``root`` itself when it is a file, else every image under it, sorted."""
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise SystemExit(f"error: no images in {root}")
    return files


def predict(
    model_path: Path, paths: list[Path], batch_size: int = 128, device: str = "cpu"
) -> tuple[list[str], torch.Tensor]:
    """(score names, predictions float [N, K]) for the images."""
    model, meta = load_model(model_path, device)
    out = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            x = torch.stack(
                [torch.from_numpy(load_image(p, meta["in_channels"], meta["image_size"]))
                 for p in chunk]
            )  # fmt: skip
            out.append(model(x.to(device).float() / 255.0).cpu())
    return meta["targets"], torch.cat(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.input)
    paths = list_images(root)
    names, preds = predict(Path(args.model), paths, args.batch_size, args.device)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", *names])
        for path, row in zip(paths, preds.tolist(), strict=True):
            rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
            writer.writerow([rel, *(f"{v:.6g}" for v in row)])
    print(f"Wrote {len(paths)} predictions of {', '.join(names)} to {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
