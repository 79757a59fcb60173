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

    def __init__(self, reporter: Reporter, total: int) -> None:
        self.reporter, self.total, self.done = reporter, max(total, 1), 0
        self.every = max(1, total // 100)
        reporter.progress(1, 1, 0, self.total)

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


def convert_part(
    args: argparse.Namespace,
    part: str,
    items: list[Item],
    source: Source,
    dest: Path,
    mapper: Mapper,
    progress: Progress,
    tf: Any,
) -> list[str]:
    """Convert one part's images; the TFRecord files written (none for class folders)."""
    if args.output_format == "class_folders":
        work = write_folders(args, part, items, source, dest)
        for chunk in _chunks(items):
            for _ in mapper(work, chunk):
                progress.add(1)
        return []
    writer = ShardWriter(dest, part, len(items), args.images_per_shard, tf)

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

    try:
        for chunk in _chunks(items):
            for record in mapper(encode, chunk):
                writer.write(record)
                progress.add(1)
    finally:
        writer.close()
    return writer.files


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
    """Convert as ``args`` say; returns the summary it wrote."""
    source = scan_source(Path(args.data_dir))
    plan = assign(source, args.parts, args.seed)
    out = Path(args.output_dir)
    final, staging = out / "dataset", out / "dataset.partial"
    if final.exists():
        raise FileExistsError(f"{final} exists; remove it or choose another --output_dir")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    report = summary(args, source, plan)
    sizes = ", ".join(f"{part} {len(items)}" for part, items in plan.items())
    print(
        f"Source: {source.root.name} ({source.layout} layout), {len(source.classes)} classes, "
        f"{len(source)} images -> {sizes}",
        flush=True,
    )
    tf = load_tensorflow() if args.output_format == "tfrecord" else None
    if args.output_format == "tfrecord":
        print(f"TFRecord writer: {'tensorflow' if tf else 'built-in (no tensorflow)'}", flush=True)
        (staging / "labels.txt").write_text("".join(f"{c}\n" for c in source.classes))
    reporter = Reporter(None)
    start = time.perf_counter()
    progress = Progress(reporter, len(source))
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        mapper: Mapper = pool.map if args.workers > 1 else map
        files = {
            part: convert_part(args, part, items, source, staging, mapper, progress, tf)
            for part, items in plan.items()
        }
    seconds = time.perf_counter() - start
    staging.rename(final)
    if args.output_format == "tfrecord":
        report["shards"] = files
    report["seconds"] = round(seconds, 3)
    report["images_per_second"] = round(len(source) / max(seconds, 1e-9), 1)
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
    except (DatasetLayoutError, FileExistsError) as exc:
        shutil.rmtree(Path(args.output_dir) / "dataset.partial", ignore_errors=True)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0
