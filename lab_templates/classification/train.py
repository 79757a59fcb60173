"""Train an image classifier on an MLSteam folder-format dataset.

Run by the platform as ``python train.py --network lenet --num_epoch 10 ...`` (one
``--name value`` per mlsteam.yml param) with MLSTEAM_INPUT_DIR / MLSTEAM_OUTPUT_DIR
set, or standalone: ``python train.py --data_dir D --output_dir O [flags]``.
``python train.py --help`` lists every flag.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cls.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(script=str(Path(__file__).resolve())))
