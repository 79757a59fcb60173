"""Predict classes for a folder of images with a trained model.pt.

    python predict.py --model /mlsteam/output/model.pt --input DIR [--output preds.csv]

Writes a CSV with one row per image: path (relative to --input), predicted class,
confidence (softmax probability of that class); ``--probabilities`` adds one column per
class (``p_<class>``) with its probability.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from cls.config import predict_parser  # noqa: E402
from cls.data import list_images, load_batch  # noqa: E402
from cls.export import load_model  # noqa: E402


def predict(
    model_path: Path, paths: list[Path], batch_size: int = 128, device: str = "cpu"
) -> list[tuple[Path, str, float]]:
    """(path, class name, confidence) for every image."""
    return [
        (p, name, conf)
        for p, name, conf, _ in predict_all(model_path, paths, batch_size, device)[1]
    ]


def predict_all(
    model_path: Path, paths: list[Path], batch_size: int = 128, device: str = "cpu"
) -> tuple[list[str], list[tuple[Path, str, float, list[float]]]]:
    """The class names and (path, class name, confidence, every class's probability)."""
    model, meta = load_model(model_path, device)
    channels, size, names = meta["in_channels"], meta["image_size"], meta["class_names"]
    rows: list[tuple[Path, str, float, list[float]]] = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            x = load_batch(chunk, channels, size)
            probs = model(x.to(device).float() / 255.0).softmax(1)
            conf, pred = probs.max(1)
            rows += [
                (p, names[int(i)], float(c), [float(v) for v in all_])
                for p, i, c, all_ in zip(chunk, pred, conf, probs.cpu(), strict=True)
            ]
    return list(names), rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = predict_parser(__doc__ or "", "predictions.csv", "CSV file to write")
    parser.add_argument("--probabilities", action="store_true", help="a column per class")
    args = parser.parse_args(argv)
    root = Path(args.input)
    names, rows = predict_all(Path(args.model), list_images(root), args.batch_size, args.device)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        extra = [f"p_{n}" for n in names] if args.probabilities else []
        writer.writerow(["path", "predicted_class", "confidence", *extra])
        for path, name, conf, probs in rows:
            rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
            each = [f"{v:.6f}" for v in probs] if args.probabilities else []
            writer.writerow([rel, name, f"{conf:.6f}", *each])
    print(f"Wrote {len(rows)} predictions to {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
