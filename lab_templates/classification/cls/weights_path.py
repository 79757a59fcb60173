"""Where ``--weights`` points: a file or folder path, or registered weights the platform
mounted at ``$MLSTEAM_WEIGHTS_DIR/<name>``. Torch-free, so the TensorFlow path uses it too."""

from __future__ import annotations

import os
from pathlib import Path


def locate(value: str) -> Path:
    """The path ``value`` names, else the registered weights of that name; FileNotFoundError
    saying both were looked for when neither exists."""
    path = Path(value)
    if path.exists():
        return path
    mounted = os.environ.get("MLSTEAM_WEIGHTS_DIR")
    if not mounted or not (Path(mounted) / value).exists():
        raise FileNotFoundError(
            f"--weights {value!r}: no such file, and no registered weights of that "
            "name in $MLSTEAM_WEIGHTS_DIR"
        )
    return Path(mounted) / value
