"""The conversion job: scan, split, convert (on a thread pool), write, summarise.

Output (``--output_dir``):

- ``dataset/``: class folders ``<part>/<class>/<name>.png``, or TFRecord shards
  ``<part>-00000-of-0000N.tfrecord`` and ``labels.txt`` (line *i*: the class of label
  *i*). It is written as ``dataset.partial/`` and renamed when complete, so a stopped
  job never leaves a half-written ``dataset/``.
- ``summary.json``: the options, the classes and each part's size per class.

Standard output: the platform's progress lines (``Progress epoch=1/1 step=k/N``,
``cls.reporting``) for the ETA, and a summary line per part.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

from cls.data import DatasetLayoutError
from cls.reporting import Reporter
from cls.stopping import EXIT_CODE, GracefulStop, StopRequested

from conversion import checkpoint
from conversion.checkpoint import Checkpoint
from conversion.imaging import convert_image
from conversion.options import parse_args
from conversion.source import Item, Source, assign, scan_source
from conversion.tfrecord import ShardWriter, load_tensorflow

CHUNK = 256  # images in flight at once (bounds the memory a part's PNG bytes take)
Mapper = Callable[[Callable[[Item], Any], Iterable[Item]], Iterator[Any]]


def _chunks(items: Sequence[Item]) -> Iterable[list[Item]]:
    it = iter(items)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


class Progress:
    """Counts converted images and prints a progress line about every 1%."""

    def __init__(self, reporter: Reporter, total: int, done: int = 0) -> None:
        self.reporter, self.total, self.done = reporter, max(total, 1), done
        self.every = max(1, total // 100)
        reporter.progress(1, 1, done, self.total)

    def add(self, count: int) -> None:
        before, self.done = self.done, self.done + count
        if self.done // self.every != before // self.every or self.done == self.total:
            self.reporter.progress(1, 1, min(self.done, self.total), self.total)


def write_folders(
    args: argparse.Namespace, part: str, items: list[Item], source: Source, dest: Path
) -> Callable[[Item], None]:
    """A worker writing one image of ``part`` as ``dest/<part>/<class>/<name>``."""
    for name in source.classes:
        (dest / part / name).mkdir(parents=True, exist_ok=True)

    def work(item: Item) -> None:
        png, *_ = convert_image(item.path, args.resize_method, args.image_size)
        (dest / part / source.classes[item.label] / item.name).write_bytes(png)

    return work


class Position:
    """Where the run is: the checkpoint, the SIGTERM flag and the per-run image budget
    (``--max_images_this_run``; 0: none). :attr:`stopped` once the run must end."""

    def __init__(self, ckpt: Checkpoint, stop: GracefulStop, budget: int) -> None:
        self.ckpt, self.stop, self.left, self.stopped = ckpt, stop, budget or -1, False

    def step(self) -> bool:
        """Count one written image; True when the run must stop after it."""
        self.left -= 1
        self.stopped = self.left == 0 or self.stop.requested
        return self.stopped


def convert_part(
    args: argparse.Namespace,
    part: str,
    items: list[Item],
    source: Source,
    dest: Path,
    mapper: Mapper,
    progress: Progress,
    tf: Any,
    at: Position,
) -> list[str]:
    """Convert one part's images after those the checkpoint holds, saving the position
    after every chunk and at a stop (an image boundary); the TFRecord files written
    (none for class folders)."""
    done, files = at.ckpt.start_of(part)
    writer: ShardWriter | None = None
    if args.output_format == "class_folders":
        work: Callable[[Item], Any] = write_folders(args, part, items, source, dest)
    else:
        writer = ShardWriter(dest, part, len(items), args.images_per_shard, tf)
        writer.resume(files, done)
        work = record_encoder(args, source, writer)
    try:
        for chunk in _chunks(items[done:]):
            for result in mapper(work, chunk):
                if writer is not None:
                    writer.write(result)
                done += 1
                progress.add(1)
                if at.step():
                    break
            if writer is not None:
                writer.flush()
            files = writer.files if writer else []
            at.ckpt.save(part, done, files, complete=done == len(items))
            if at.stopped:
                break
        if not items:
            at.ckpt.save(part, 0, [], complete=True)
    finally:
        if writer is not None:
            writer.close()
    return files


def record_encoder(
    args: argparse.Namespace, source: Source, writer: ShardWriter
) -> Callable[[Item], bytes]:
    """A worker converting one image into what ``writer.write`` takes."""

    def encode(item: Item) -> bytes:
        png, width, height, channels = convert_image(item.path, args.resize_method, args.image_size)
        return writer.encode(
            {
                "image/encoded": png,
                "image/format": b"png",
                "image/class/label": item.label,
                "image/class/text": source.classes[item.label].encode(),
                "image/height": height,
                "image/width": width,
                "image/channels": channels,
                "image/filename": item.path.relative_to(source.root).as_posix().encode(),
            }
        )

    return encode


def summary(args: argparse.Namespace, source: Source, plan: dict[str, list[Item]]) -> dict:
    """What summary.json says (before the timings and files are added)."""
    parts = {}
    for part, items in plan.items():
        counts = dict.fromkeys(source.classes, 0)
        for item in items:
            counts[source.classes[item.label]] += 1
        parts[part] = {"images": len(items), "classes": counts}
    return {
        "source": {"path": source.root.name, "layout": source.layout, "images": len(source)},
        "resize_method": args.resize_method,
        "image_size": None if args.resize_method == "NONE" else args.image_size,
        "split": {p.name: p.percent for p in args.parts},
        "seed": args.seed,
        "output_format": args.output_format,
        "classes": source.classes,
        "parts": parts,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Convert as ``args`` say (after what a ``--resume`` checkpoint holds); returns the
    summary it wrote. StopRequested after a SIGTERM or ``--max_images_this_run``."""
    source = scan_source(Path(args.data_dir))
    plan = assign(source, args.parts, args.seed)
    out = Path(args.output_dir)
    final, staging = out / "dataset", out / "dataset.partial"
    if final.exists():
        raise FileExistsError(f"{final} exists; remove it or choose another --output_dir")
    digest = checkpoint.fingerprint(args, source, plan)
    ckpt = checkpoint.load(args.resume, out, digest) if staging.is_dir() else None
    if ckpt is None:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        ckpt = checkpoint.Checkpoint(out, digest)
    report = summary(args, source, plan)
    sizes = ", ".join(f"{part} {len(items)}" for part, items in plan.items())
    print(
        f"Source: {source.root.name} ({source.layout} layout), {len(source.classes)} classes, "
        f"{len(source)} images -> {sizes}",
        flush=True,
    )
    skipped = sum(len(plan[p]) for p in ckpt.finished) + int(ckpt.current.get("done", 0))
    if skipped:
        print(f"Resume: {skipped} of {len(source)} images already converted", flush=True)
    tf = load_tensorflow() if args.output_format == "tfrecord" else None
    if args.output_format == "tfrecord":
        print(f"TFRecord writer: {'tensorflow' if tf else 'built-in (no tensorflow)'}", flush=True)
        (staging / "labels.txt").write_text("".join(f"{c}\n" for c in source.classes))
    start = time.perf_counter()
    progress = Progress(Reporter(None), len(source), skipped)
    files: dict[str, list[str]] = dict(ckpt.finished)
    with GracefulStop() as stop, ThreadPoolExecutor(max_workers=args.workers) as pool:
        at = Position(ckpt, stop, args.max_images_this_run)
        mapper: Mapper = pool.map if args.workers > 1 else map
        for part, items in plan.items():
            if part not in files:
                if at.stopped:
                    break
                files[part] = convert_part(
                    args, part, items, source, staging, mapper, progress, tf, at
                )
    converted = progress.done - skipped
    if len(ckpt.finished) < len(plan):
        why = "by SIGTERM" if at.stop.requested else "by --max_images_this_run"
        raise StopRequested(f"{why} after {progress.done} of {len(source)} images")
    seconds = time.perf_counter() - start
    staging.rename(final)
    ckpt.remove()
    if args.output_format == "tfrecord":
        report["shards"] = {part: files[part] for part in plan}
    report["seconds"] = round(seconds, 3)
    report["images_per_second"] = round(converted / max(seconds, 1e-9), 1)
    (out / "summary.json").write_text(json.dumps(report, indent=2) + "\n")
    for part, info in report["parts"].items():
        print(f"Summary part={part} images={info['images']}", flush=True)
    print(f"Wrote {final} ({report['images_per_second']} images/s)", flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of convert.py: 0 on success, 2 when the dataset or output is refused."""
    args = parse_args(argv)
    try:
        run(args)
    except StopRequested as stop:
        print(
            f"Stopped {stop}: checkpoint.json and dataset.partial/ keep them. "
            f"Continue with --resume auto (exit code {EXIT_CODE})",
            flush=True,
        )
        return EXIT_CODE
    except (DatasetLayoutError, FileExistsError) as exc:
        if not isinstance(exc, FileExistsError) and not str(exc).startswith("--resume"):
            shutil.rmtree(Path(args.output_dir) / "dataset.partial", ignore_errors=True)
            (Path(args.output_dir) / checkpoint.CHECKPOINT).unlink(missing_ok=True)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0
