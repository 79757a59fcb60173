"""Write a predicted mask for every image of a folder (CLB's predict step).

    python predict.py --config /mlsteam/output/config.yml --input DIR --output MASKS_DIR
    python predict.py --model /mlsteam/output/model.pt --input DIR --output MASKS_DIR

``config.yml`` (written by train.py beside model.pt) names the model file and how to
rebuild it. Each image ``DIR/a/b.jpg`` gives ``MASKS_DIR/a/b.png``: a palette PNG at
the image's own size whose pixel index is the class (0 background, 1 foreground for
binary masks), so it can serve as a training mask again. ``--overlay`` also writes
``b_overlay.png`` (image | prediction).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# cls/ is beside this file in a lab, in ../classification when run from lab_templates/
sys.path[:0] = [str(HERE), str(HERE.parent / "classification")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from cls.data import list_images, load_image  # noqa: E402
from PIL import Image  # noqa: E402
from seg.export import load_segmenter  # noqa: E402
from seg.overlay import overlay_colours, panel, save_mask  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="predict.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="config.yml written by train.py")
    source.add_argument("--model", help="model.pt written by train.py")
    p.add_argument("--input", required=True, help="an image or a folder (searched recursively)")
    p.add_argument("--output", default="predictions", help="folder for the mask PNGs")
    p.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    return p


def predict_image(path: Path, model: torch.nn.Module, meta: dict[str, Any]) -> np.ndarray:
    """Class indices uint8 [H, W] at the image's own size."""
    x = torch.from_numpy(load_image(path, meta["in_channels"], meta["image_size"]))
    device = next(model.parameters()).device
    with torch.inference_mode():
        labels = model(x[None].to(device).float() / 255).argmax(1)[0].to(torch.uint8).cpu()
    with Image.open(path) as img:
        size = img.size
    return np.array(Image.fromarray(labels.numpy()).resize(size, Image.Resampling.NEAREST))


def write_overlay(path: Path, image_path: Path, labels: np.ndarray, meta: dict[str, Any]) -> None:
    """image | prediction, at the image's own size."""
    height, width = labels.shape
    image = load_image(image_path, meta["in_channels"], max(height, width))
    if image.shape[1:] != labels.shape:  # not square: decode at the original size instead
        with Image.open(image_path) as img:
            arr = np.array(img.convert("L" if meta["in_channels"] == 1 else "RGB"))
        image = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    colours = overlay_colours([tuple(c) for c in meta["palette"]], meta["mask_mode"])
    Image.fromarray(panel(image, None, labels, colours)).save(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root, out = Path(args.input), Path(args.output)
    try:
        model, meta = load_segmenter(
            Path(args.model) if args.model else None,
            Path(args.config) if args.config else None,
            args.device,
        )
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from exc
    paths = list_images(root)
    palette = [tuple(c) for c in meta["palette"]]
    for path in paths:
        labels = predict_image(path, model, meta)
        rel = path.relative_to(root) if root.is_dir() else Path(path.name)
        save_mask(out / rel.with_suffix(".png"), labels, palette)
        if args.overlay:
            write_overlay(out / rel.with_name(rel.stem + "_overlay.png"), path, labels, meta)
    print(f"Wrote {len(paths)} mask(s) to {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
