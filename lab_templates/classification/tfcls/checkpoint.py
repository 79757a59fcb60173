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
from cls.weights_path import locate

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


KERAS_WEIGHTS = ".weights.h5"
BEST = "best.weights.h5"  # what a TensorFlow job writes (and registering keeps)


def resolve_weights(value: str) -> Path:
    """The Keras weights file ``--weights`` names for a TensorFlow job: a ``.weights.h5``
    path, or registered weights mounted at ``$MLSTEAM_WEIGHTS_DIR/<name>`` (a folder: its
    best.weights.h5, else its one ``.weights.h5``). FileNotFoundError when neither
    exists; ValueError, saying why, for PyTorch-only weights or any other file."""
    path = locate(value)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.name.endswith(KERAS_WEIGHTS))
        best = [p for p in found if p.name == BEST]
        if len(best or found) != 1:
            torch_files = sorted(p.name for p in path.iterdir() if p.suffix in (".pt", ".pth"))
            raise ValueError(
                f"--weights {value!r}: {path} holds no single Keras weights file "
                f"({KERAS_WEIGHTS}), so a TensorFlow job cannot start from it"
                + (
                    f"; {torch_files[0]} is PyTorch weights: use them with --framework "
                    "pytorch, or register a TensorFlow job's model (its best.weights.h5 "
                    "is kept)"
                    if torch_files
                    else ""
                )
            )
        return (best or found)[0]
    if not path.name.endswith(KERAS_WEIGHTS):
        torch_hint = (
            " (this is a PyTorch file: use it with --framework pytorch)"
            if path.suffix in (".pt", ".pth")
            else ""
        )
        raise ValueError(
            f"--weights with --framework tensorflow takes a {KERAS_WEIGHTS} "
            f"(best.weights.h5 of an earlier TensorFlow job) or registered weights of one"
            + torch_hint
        )
    return path
