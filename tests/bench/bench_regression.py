"""Benchmark of the regression template (a script, not a test).

    python -m tests.bench regression

Training images/s of the template's epoch (RegressionTrainer.train_one_epoch: row
lookup, standardised MSE, MAE tally, log windows) vs the simplest loop (pre-made float
tensors and score tensors, AdamW, MSE) with the same model, data and batch, measured
alternately in the same run on the perceptions sample (32 px, batch 32); aim >= 0.95.
"""

from __future__ import annotations

import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [
    str(REPO / "lab_templates" / "regression"),
    str(REPO / "lab_templates" / "classification"),
]
sys.dont_write_bytecode = True

from cls.data import Split, TensorLoader, decode_all  # noqa: E402
from cls.engine import Runtime, make_optimizer  # noqa: E402
from cls.models import build_network  # noqa: E402
from reg.data import read_table  # noqa: E402
from reg.engine import RegressionTrainer, Regressor  # noqa: E402

from labyard.seed.perceptions import write_perceptions_dataset  # noqa: E402
from tests.bench.bench_template import compare  # noqa: E402

BATCH = 32


def make_model(name: str, scores: torch.Tensor) -> Regressor:
    torch.manual_seed(0)
    mean, std = scores.mean(0).tolist(), scores.std(0).tolist()
    return Regressor(build_network(name, 3, scores.shape[1], 32), [0.5] * 3, [0.25] * 3, mean, std)


def template_rate(model: Regressor, images: torch.Tensor, scores: torch.Tensor) -> float:
    rt = Runtime(torch.device("cpu"))
    opt = make_optimizer(model, "adamw", 1e-3, 1e-4)
    trainer = RegressionTrainer(
        model, opt, rt, scores=scores, target_mean=model.target_mean[0].tolist(),
        target_std=model.target_std[0].tolist(),
    )  # fmt: skip
    loader = TensorLoader(images, torch.arange(len(scores)), BATCH, shuffle=True)
    start = time.perf_counter()
    _, _, _, seen = trainer.train_one_epoch(loader, 0, log_every=10)
    return seen / (time.perf_counter() - start)


def plain_rate(model: Regressor, images: torch.Tensor, scores: torch.Tensor) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = images.float() / 255.0
    z = (scores - model.target_mean) / model.target_std
    model.train()
    start = time.perf_counter()
    for i in range(0, len(z), BATCH):
        opt.zero_grad()
        pred = (model(x[i : i + BATCH]) - model.target_mean) / model.target_std
        F.mse_loss(pred, z[i : i + BATCH]).backward()
        opt.step()
    return len(z) / (time.perf_counter() - start)


def main() -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "perceptions"
        write_perceptions_dataset(root)
        _, table = read_table(root / "train.csv", "image", [])
        images = decode_all(Split(table.paths, [0] * len(table.paths)), 3, 32)
    scores = torch.from_numpy(table.scores)
    for name, n in (("lenet", 800), ("resnet18", 128)):
        model = make_model(name, scores)
        ours, plain = compare(
            partial(template_rate, model, images[:n], scores[:n]),
            partial(plain_rate, model, images[:n], scores[:n]),
            repeats=5,
        )
        print(
            f"step/{name:8s} template {ours:7.0f} img/s   plain loop {plain:7.0f} img/s"
            f"   ratio {ours / plain:.2f}  (aim >= 0.95; CPU, 1 thread, 32 px, batch {BATCH})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
