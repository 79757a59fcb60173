"""Predict scores for a folder of images with a trained model.pt.

    python predict.py --model /mlsteam/output/model.pt --input DIR [--output preds.csv]

Writes a CSV with one row per image: its path (relative to --input) and one column
per score the model was trained on.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
# cls/ is beside this file in a lab, in ../classification when run from lab_templates/
sys.path[:0] = [str(HERE), str(HERE.parent / "classification")]

import torch  # noqa: E402
from cls.config import predict_parser  # noqa: E402
from cls.data import list_images, load_batch  # noqa: E402
from reg.export import load_model  # noqa: E402


def predict(
    model_path: Path, paths: list[Path], batch_size: int = 128, device: str = "cpu"
) -> tuple[list[str], torch.Tensor]:
    """(score names, predictions float [N, K]) for the images."""
    model, meta = load_model(model_path, device)
    out = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            x = load_batch(chunk, meta["in_channels"], meta["image_size"])
            out.append(model(x.to(device).float() / 255.0).cpu())
    return meta["targets"], torch.cat(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = predict_parser(__doc__ or "", "predictions.csv", "CSV file to write").parse_args(argv)
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
