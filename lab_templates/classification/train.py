"""Train an image classifier on an MLSteam folder-format dataset.

Run by the platform as ``python train.py --network lenet --num_epoch 10 ...`` (one
``--name value`` per mlsteam.yml param) with MLSTEAM_INPUT_DIR / MLSTEAM_OUTPUT_DIR
set, or standalone: ``python train.py --data_dir D --output_dir O [flags]``.
``python train.py --help`` lists every flag.

``--framework pytorch`` (the default) trains with PyTorch (package cls);
``--framework tensorflow`` with TensorFlow/Keras (package tfcls), which needs
``pip install 'labyard[tensorflow]'``. The framework is chosen before either is
imported, so a PyTorch job never loads TensorFlow, and a TensorFlow job without
TensorFlow fails at once saying how to install it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

FRAMEWORKS = ("pytorch", "tensorflow")


def split_framework(argv: list[str]) -> tuple[str, list[str]]:
    """(framework, the other flags): ``--framework`` on the command line, else a
    ``--config`` file's ``framework``, else pytorch."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--framework", choices=FRAMEWORKS, default=None)
    parser.add_argument("--config", default=None)
    known, _ = parser.parse_known_args(argv)
    rest, skip = [], False
    for i, token in enumerate(argv):
        if skip:
            skip = False
        elif token == "--framework":
            skip = i + 1 < len(argv)
        elif not token.startswith("--framework="):
            rest.append(token)
    if known.framework:
        return known.framework, rest
    if known.config and Path(known.config).is_file():
        data = yaml.safe_load(Path(known.config).read_text()) or {}
        data = data.get("params", data) if isinstance(data, dict) else {}
        value = data.get("framework") if isinstance(data, dict) else None
        value = value[0] if isinstance(value, list) and len(value) == 1 else value
        if value in FRAMEWORKS:
            return str(value), rest
    return "pytorch", rest


def main() -> int:
    framework, argv = split_framework(sys.argv[1:])
    if framework == "tensorflow":
        from tfcls import require_tensorflow

        require_tensorflow()
        from tfcls.main import main as tf_main

        return tf_main(sys.argv[1:])
    from cls.main import main as torch_main

    return torch_main(argv, script=str(Path(__file__).resolve()))


if __name__ == "__main__":
    sys.exit(main())
