"""Benchmark of the segmentation template (a script, not a test).

    python -m tests.bench segmentation                            # CPU
    python -m tests.bench.bench_segmentation --device cuda        # adds unet at 256 px, bf16

images/s of the template's training epoch (SegTrainer.train_one_epoch over the
in-memory loader: uint8 -> float, joint augmentation, Dice/IoU confusion counts on
the device) vs the plainest loop of the same UNet, loss and optimizer over pre-made
float tensors, measured alternately in the same run; aim >= 0.9.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

from tests.bench.bench_template import compare, sync

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lab_templates" / "segmentation"))
sys.path.insert(1, str(REPO / "lab_templates" / "classification"))
sys.dont_write_bytecode = True

from cls.data import TensorLoader  # noqa: E402
from cls.distributed import DistInfo  # noqa: E402
from cls.engine import Runtime  # noqa: E402
from cls.models import Classifier  # noqa: E402
from seg.engine import SegTrainer  # noqa: E402
from seg.metrics import segmentation_loss  # noqa: E402
from seg.models import build_network  # noqa: E402
from seg.pipeline import build_data  # noqa: E402

from labyard.seed.shapes import write_shapes_dataset  # noqa: E402


def make_model(name: str, size: int, device: torch.device, channels_last: bool) -> Classifier:
    torch.manual_seed(0)
    model = Classifier(build_network(name, 1, 2, size), [0.3], [0.15]).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def template_rate(model: Classifier, loader: TensorLoader, rt: Runtime, aug: str) -> float:
    """Images/s of one SegTrainer epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    trainer = SegTrainer(model, opt, rt, 2, aug=aug)
    sync(rt.device)
    start = time.perf_counter()
    _, tally = trainer.train_one_epoch(loader, 0, log_every=10**9)
    sync(rt.device)
    return tally.images / (time.perf_counter() - start)


def plain_rate(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch: int, amp: bool) -> float:
    """The plainest loop: float tensors, Adam, the same loss, no metrics."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    sync(x.device)
    start = time.perf_counter()
    for i in range(0, len(y), batch):
        opt.zero_grad()
        with torch.autocast("cuda", torch.bfloat16, enabled=amp):
            logits = model(x[i : i + batch])
        segmentation_loss(logits, y[i : i + batch], "ce_dice").backward()
        opt.step()
    sync(x.device)
    return len(y) / (time.perf_counter() - start)


def bench(
    shapes: Path, device: str, network: str, size: int, n: int, batch: int, repeats: int
) -> str:
    dev = torch.device(device)
    gpu = dev.type == "cuda"
    rt = Runtime(dev, amp=gpu, channels_last=gpu)
    data = build_data(
        data_dir=str(shapes),
        image_size=size,
        batch_size=batch,
        seed=0,
        val_fraction=0,
        channels="1",
        mask_mode="binary",
        dist=DistInfo(),
        device=dev,
    )
    images, masks = (t[:n].to(dev) for t in data.tensors["train"])
    loader = TensorLoader(images, masks, batch, shuffle=True)
    x = rt.prepare(images)
    y = masks.long()
    model = make_model(network, size, dev, gpu)
    rows = []
    for aug in ("none", "both"):
        ours, plain = compare(
            partial(template_rate, model, loader, rt, aug),
            partial(plain_rate, model, x, y, batch, gpu),
            repeats,
        )
        rows.append(
            f"{device}/{network} {size}px b{batch} aug={aug:4s}: template {ours:7.1f} img/s   "
            f"plain loop {plain:7.1f} img/s   ratio {ours / plain:.2f}  (aim >= 0.9)"
        )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        shapes = Path(tmp) / "shapes"
        write_shapes_dataset(shapes)
        print(bench(shapes, "cpu", "unet_small", 64, 96, 16, args.repeats), flush=True)
        if args.device == "cuda":
            torch.backends.cudnn.benchmark = True
            print(bench(shapes, "cuda", "unet", 256, 240, 32, args.repeats), flush=True)


if __name__ == "__main__":
    main()
