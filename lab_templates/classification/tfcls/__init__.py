"""The TensorFlow/Keras path of the classification template (``--framework tensorflow``).

Importing this package does not import TensorFlow: :func:`require_tensorflow` checks
for it first, so a job without it fails at once with :data:`INSTALL_HINT`.
"""

from __future__ import annotations

import importlib.util
import os

INSTALL_HINT = (
    "error: --framework tensorflow needs TensorFlow, which this environment does not have. "
    "Install it with: pip install 'labyard[tensorflow]' (tensorflow-cpu and tf2onnx), "
    "or run the job in the labyard/runner image, which has it"
)


def tensorflow_available() -> bool:
    """True when ``import tensorflow`` and ``import tf2onnx`` would find the packages."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "tf2onnx"))
    except (ImportError, ValueError):
        return False


def require_tensorflow() -> None:
    """Import TensorFlow, or exit with :data:`INSTALL_HINT` (exit status 1).

    Before the import: TensorFlow's INFO logs off, and its thread pools sized by
    ``OMP_NUM_THREADS`` when that is set (they cannot change once TensorFlow runs).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", threads)
    try:
        import tensorflow  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"{INSTALL_HINT} ({exc})") from None
    if importlib.util.find_spec("tf2onnx") is None:
        raise SystemExit(f"{INSTALL_HINT} (tf2onnx is missing)")
