"""Checkpoints of a conversion: where it got to, so ``--resume`` skips finished work.

``<output_dir>/checkpoint.json`` is rewritten (atomically) after every chunk of images and
when the job stops (SIGTERM, ``--max_images_this_run``). It holds:

- ``fingerprint``: a hash of the options and the plan (which image goes where, in which
  order); a resume with other options or another source is refused.
- ``finished``: the parts written completely (name -> their TFRecord files).
- ``current``: the part in progress, how many of its images (in plan order) are written
  and its TFRecord files so far.

What ``dataset.partial/`` holds beyond the checkpoint (images in flight when it stopped, a
record cut by a SIGKILL) is rewritten on resume: class-folder images are written again
and the open TFRecord shard is rebuilt from its first records (read back and checked),
so a resumed run writes exactly the bytes of an uninterrupted one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cls.data import DatasetLayoutError

from conversion.source import Item, Source

CHECKPOINT = "checkpoint.json"


def fingerprint(args: argparse.Namespace, source: Source, plan: dict[str, list[Item]]) -> str:
    """A hash of everything that decides the output bytes."""
    options = [args.resize_method, args.image_size, args.output_format, args.images_per_shard]
    items = {
        part: [(i.path.relative_to(source.root).as_posix(), i.label, i.name) for i in items]
        for part, items in plan.items()
    }
    text = json.dumps([options, source.classes, items], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Checkpoint:
    """The run's position; :meth:`save` writes it to ``<output_dir>/checkpoint.json``."""

    def __init__(self, out: Path, digest: str, state: dict[str, Any] | None = None) -> None:
        self.path, self.digest = out / CHECKPOINT, digest
        state = state or {}
        self.finished: dict[str, list[str]] = dict(state.get("finished", {}))
        self.current: dict[str, Any] = dict(state.get("current") or {})

    def start_of(self, part: str) -> tuple[int, list[str]]:
        """(images of ``part`` already written, its TFRecord files so far)."""
        if self.current.get("part") != part:
            return 0, []
        return int(self.current["done"]), list(self.current.get("files", []))

    def save(self, part: str, done: int, files: list[str], *, complete: bool = False) -> None:
        """Record ``done`` images of ``part`` as written (all of them when ``complete``)."""
        if complete:
            self.finished[part], self.current = list(files), {}
        else:
            self.current = {"part": part, "done": done, "files": list(files)}
        state = {"fingerprint": self.digest, "finished": self.finished, "current": self.current}
        tmp = self.path.with_name(CHECKPOINT + ".tmp")
        tmp.write_text(json.dumps(state, indent=1) + "\n")
        os.replace(tmp, self.path)

    def remove(self) -> None:
        """Forget the checkpoint (the dataset is complete, or was thrown away)."""
        self.path.unlink(missing_ok=True)


def load(resume: str | None, out: Path, digest: str) -> Checkpoint | None:
    """The checkpoint ``--resume`` names (``auto``: ``<out>/checkpoint.json`` when it exists,
    else None: start afresh). DatasetLayoutError when a named one is missing or when it
    was written for other options or another source."""
    if not resume:
        return None
    path = out / CHECKPOINT if resume == "auto" else Path(resume)
    if not path.is_file():
        if resume == "auto":
            return None
        raise DatasetLayoutError(f"--resume: no checkpoint at {path}")
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetLayoutError(f"--resume: cannot read {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("fingerprint") != digest:
        raise DatasetLayoutError(
            f"--resume: {path} was written for other options or another source dataset; "
            f"convert with the same params, or remove it and {out / 'dataset.partial'}"
        )
    return Checkpoint(out, digest, state)
