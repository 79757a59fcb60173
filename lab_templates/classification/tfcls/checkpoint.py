"""checkpoint on every epoch's end and ``--resume`` with tf.train.Checkpoint.

``<output_dir>/tf_checkpoint/`` holds the weights and optimizer slots of the last
completed epoch (``epoch-N.*``, written by tf.train.Checkpoint) and ``state.json``
(epoch, global step, best score, the prefix), written last and atomically, so a stop
at any moment leaves the previous complete checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

STATE = "state.json"


@dataclass
class RunState:
    """What changes from epoch to epoch (and is restored by --resume)."""

    epoch: int = 0
    global_step: int = 0
    best_acc: float = -1.0


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "tf_checkpoint"


def save(
    folder: Path, model: keras.Model, optimizer: Any, state: RunState, meta: dict[str, Any]
) -> None:
    """Write ``epoch-<N>`` then state.json (atomically), then drop older epochs' files."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"epoch-{state.epoch}"
    tf.train.Checkpoint(model=model, optimizer=optimizer).write(str(folder / prefix))
    tmp = folder / f".{STATE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({**asdict(state), "prefix": prefix, **meta}, default=str))
    os.replace(tmp, folder / STATE)
    for old in folder.glob("epoch-*"):
        if not old.name.startswith(prefix + "."):
            old.unlink()


def restore(path: Path, model: keras.Model, optimizer: Any) -> tuple[RunState, dict[str, Any]]:
    """Restore from a tf_checkpoint folder (or its state.json); (run state, saved record)."""
    folder = path.parent if path.name == STATE else path
    if not (folder / STATE).is_file():
        raise FileNotFoundError(f"no checkpoint to resume at {folder} (no {STATE})")
    record = json.loads((folder / STATE).read_text())
    optimizer.build(model.trainable_variables)  # slots exist before their values load
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    ckpt.read(str(folder / record["prefix"])).assert_existing_objects_matched()
    state = RunState(record["epoch"], record["global_step"], record["best_acc"])
    return state, record
