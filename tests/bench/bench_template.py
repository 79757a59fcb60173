"""Benchmarks of the classification template (a script, not a test).

    python -m tests.bench.bench_template                 # CPU: step, recompute, pipeline
    python -m tests.bench.bench_template --device cuda   # adds ResNet-50 @224, bf16

Every figure is compared with a baseline measured in the same run:
- step: images/s of the template's training epoch vs the simplest possible loop
  (same model, data, batch size, optimizer); aim >= 1.0.
- recompute: ResNet-50 (64 px, batch 8) peak memory growth and step time with
  recomputing vs none (fresh subprocess each; peak RSS on CPU, CUDA peak
  allocated on GPU); aim <= 0.6x memory at <= 1.35x time.
- pipeline: the real digits pipeline vs synthetic tensors of the same shape; aim >= 0.9.
- cuda: ResNet-50 at 224 px, bf16 + channels_last, template vs synthetic ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "lab_templates" / "classification"
sys.path.insert(0, str(TEMPLATE))
sys.dont_write_bytecode = True

from cls.data import FolderDataset, StreamLoader, TensorLoader, decode_all, scan_dataset  # noqa: E402
from cls.engine import Runtime, Trainer, make_optimizer  # noqa: E402
from cls.models import Classifier, build_network  # noqa: E402

from labyard.seed.digits import write_digits_dataset  # noqa: E402

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def compare(a: Callable[[], float], b: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Best rate of ``a`` and of ``b``, measured alternately after a warm-up of each.

    Alternating and keeping the best makes the ratio robust to other load on the
    machine (the slow runs are the disturbed ones).
    """
    a(), b()
    runs = [(a(), b()) for _ in range(repeats)]
    return max(r[0] for r in runs), max(r[1] for r in runs)


def make_model(name: str, channels: int, size: int, device: torch.device) -> Classifier:
    torch.manual_seed(0)
    net = build_network(name, channels, 10, size)
    return Classifier(net, [0.5] * channels, [0.25] * channels).to(device)


def template_rate(model: Classifier, batches: Batches, rt: Runtime, **kw: Any) -> float:
    """Images/s of Trainer.train_one_epoch over ``batches``."""
    trainer = Trainer(model, make_optimizer(model, "sgd_momentum", 0.01, 1e-4), rt, **kw)
    sync(rt.device)
    start = time.perf_counter()
    _, _, _, seen = trainer.train_one_epoch(batches, 0, log_every=10**9)
    sync(rt.device)
    return seen / (time.perf_counter() - start)


def plain_rate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, amp: bool = False
) -> float:
    """The simplest loop: pre-made float tensors, SGD momentum, cross-entropy."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    sync(x.device)
    start = time.perf_counter()
    for i in range(0, len(y), batch):
        opt.zero_grad()
        with torch.autocast("cuda", torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x[i : i + batch]), y[i : i + batch])
        loss.backward()
        opt.step()
    sync(x.device)
    return len(y) / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_step(digits: Path, repeats: int) -> list[str]:
    """Template epoch vs plain loop on digits in memory (32 px, batch 64)."""
    split = scan_dataset(digits).train
    images, labels = decode_all(split, 1, 32), torch.tensor(split.labels)
    cpu = Runtime(torch.device("cpu"))
    rows = []
    for name in ("lenet", "resnet18"):
        n = len(labels) if name == "lenet" else 256
        loader = TensorLoader(images[:n], labels[:n], 64, shuffle=True)
        floats = images[:n].float() / 255.0
        model = make_model(name, 1, 32, cpu.device)
        ours, plain = compare(
            partial(template_rate, model, loader, cpu),
            partial(plain_rate, model, floats, labels[:n], 64),
            repeats,
        )
        rows.append(
            f"step/{name:8s} template {ours:8.0f} img/s   plain loop {plain:8.0f} img/s"
            f"   ratio {ours / plain:.2f}  (aim >= 1.0)"
        )
    return rows


def bench_pipeline(digits: Path, repeats: int, workers: int) -> list[str]:
    """Real digits (memory and streamed) vs synthetic tensors of the same shape, lenet."""
    split = scan_dataset(digits).train
    images, labels = decode_all(split, 1, 32), torch.tensor(split.labels)
    cpu = Runtime(torch.device("cpu"))
    model = make_model("lenet", 1, 32, cpu.device)
    synthetic_x = torch.randint(0, 256, images.shape, dtype=torch.uint8)
    synthetic = [(synthetic_x[i : i + 64], labels[i : i + 64]) for i in range(0, len(labels), 64)]
    memory = TensorLoader(images, labels, 64, shuffle=True)
    stream = StreamLoader(
        FolderDataset(split, 1, 32),
        64,
        shuffle=True,
        seed=0,
        rank=0,
        world=1,
        workers=workers,
        pin=False,
    )
    mem, synth = compare(
        lambda: template_rate(model, memory, cpu),
        lambda: template_rate(model, synthetic, cpu),
        repeats,
    )
    streamed, synth2 = compare(
        lambda: template_rate(model, stream, cpu),
        lambda: template_rate(model, synthetic, cpu),
        repeats,
    )
    return [
        f"pipeline/memory   {mem:8.0f} img/s   synthetic {synth:8.0f} img/s   ratio "
        f"{mem / synth:.2f}  (aim >= 0.9; the path used for digits)",
        f"pipeline/streamed {streamed:8.0f} img/s   synthetic {synth2:8.0f} img/s   ratio "
        f"{streamed / synth2:.2f}  ({workers} workers decoding PNGs)",
    ]


def memory_child(mode: str, device: str, size: int, batch: int) -> dict[str, float]:
    """One ResNet-50 configuration in a fresh process: peak memory growth of one step."""
    dev = torch.device(device)
    rt = Runtime(dev, amp=dev.type == "cuda", channels_last=dev.type == "cuda")
    model = make_model("resnet50", 3, size, dev)
    model.recompute = mode == "recomputing"
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    trainer = Trainer(model, opt, rt)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,))
    gen = torch.Generator()
    opt.zero_grad = lambda set_to_none=True: None  # type: ignore[method-assign]  # keep grads
    trainer.train_step(x, y, gen)  # warm-up: kernels, code pages, allocator pools
    sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
        trainer.train_step(x, y, gen)
        sync(dev)
        peak = torch.cuda.max_memory_allocated() / 2**20 - base
    else:
        with RssSampler() as sampler:
            trainer.train_step(x, y, gen)
        peak = sampler.peak - sampler.base
    return {"peak_mb": peak}


def recompute_times(device: str, size: int, batch: int, steps: int) -> tuple[float, float]:
    """Fastest step time (s) of ResNet-50 without and with recomputing, alternating."""
    dev = torch.device(device)
    rt = Runtime(dev, amp=dev.type == "cuda", channels_last=dev.type == "cuda")
    model = make_model("resnet50", 3, size, dev)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), rt)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    y = torch.randint(0, 10, (batch,))
    gen = torch.Generator()

    def step(recompute: bool) -> float:
        model.recompute = recompute
        start = time.perf_counter()
        trainer.train_step(x, y, gen)
        sync(dev)
        return 1.0 / (time.perf_counter() - start)

    plain, recomputed = compare(lambda: step(False), lambda: step(True), steps)
    return 1.0 / plain, 1.0 / recomputed


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


class RssSampler:
    """Polls this process's RSS every 0.5 ms in a thread (torch ops release the GIL).

    The child runs with MALLOC_MMAP_THRESHOLD_ fixed at 64 KiB, so tensors are
    mmapped and returned on free, and RSS follows the live tensors.
    """

    def __enter__(self) -> RssSampler:
        self.base = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.0005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def bench_recompute(device: str, size: int, batch: int, steps: int) -> list[str]:
    results = {}
    for mode in ("none", "recomputing"):
        cmd = [
            sys.executable,
            "-m",
            "tests.bench.bench_template",
            "--_memory_child",
            mode,
            "--threads",
            str(torch.get_num_threads()),
            "--device",
            device,
            "--size",
            str(size),
            "--batch",
            str(batch),
        ]
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
        out = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, check=True, env=env
        ).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    none, rec = results["none"], results["recomputing"]
    none["step_s"], rec["step_s"] = recompute_times(device, size, batch, steps)
    kind = "CUDA peak allocated" if device == "cuda" else "peak RSS growth"
    return [
        f"recompute/resnet50 {size}px b{batch}: {kind} none {none['peak_mb']:.0f} MB, "
        f"recomputing {rec['peak_mb']:.0f} MB, ratio {rec['peak_mb'] / none['peak_mb']:.2f}"
        f"  (aim <= 0.6)",
        f"recompute/resnet50 {size}px b{batch}: step none {none['step_s'] * 1000:.0f} ms, "
        f"recomputing {rec['step_s'] * 1000:.0f} ms, ratio "
        f"{rec['step_s'] / none['step_s']:.2f}  (aim <= 1.35)",
    ]


def bench_cuda(digits: Path, batch: int, steps: int) -> list[str]:
    """ResNet-50 at 224 px, bf16 + channels_last: template on digits vs synthetic ceiling."""
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    rt = Runtime(dev, amp=True, channels_last=True)
    split = scan_dataset(digits).train
    n = min(len(split), batch * steps)
    images = decode_all(split, 1, 224)[:n].to(dev)
    labels = torch.tensor(split.labels)[:n].to(dev)
    model = make_model("resnet50", 1, 224, dev)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    loader = TensorLoader(images, labels, batch, shuffle=True)
    x = torch.rand(n, 1, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)
    ours, ceiling = compare(
        lambda: template_rate(model, loader, rt),
        lambda: plain_rate(model, x, labels, batch, amp=True),
        3,
    )
    return [
        f"cuda/resnet50 224px b{batch} bf16 channels_last: template {ours:.0f} img/s, "
        f"synthetic ceiling {ceiling:.0f} img/s, ratio {ours / ceiling:.2f}"
    ]


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--only", default="step,recompute,pipeline,cuda", help="comma-separated sections"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (1 keeps CPU ratios stable on a shared machine)",
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=64, help="recompute bench image size")
    p.add_argument("--batch", type=int, default=8, help="recompute bench batch size")
    p.add_argument("--steps", type=int, default=4, help="timed steps per recompute config")
    p.add_argument("--cuda_batch", type=int, default=128)
    p.add_argument("--_memory_child", default=None, help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    if args._memory_child:
        print(json.dumps(memory_child(args._memory_child, args.device, args.size, args.batch)))
        return
    only = set(args.only.split(","))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        digits = Path(tmp) / "digits"
        write_digits_dataset(digits)
        sections: list[tuple[str, Callable[[], list[str]]]] = [
            ("step", lambda: bench_step(digits, args.repeats)),
            ("recompute", lambda: bench_recompute(args.device, args.size, args.batch, args.steps)),
            ("pipeline", lambda: bench_pipeline(digits, args.repeats, args.workers)),
        ]
        if args.device == "cuda":
            sections.append(("cuda", lambda: bench_cuda(digits, args.cuda_batch, 20)))
        for name, fn in sections:
            if name in only:
                start = time.perf_counter()
                for row in fn():
                    print(row, flush=True)
                print(f"  ({name}: {time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
