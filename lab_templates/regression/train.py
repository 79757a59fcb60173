"""Fine-tune a CNN to predict one or more scores per image (a CSV of image -> scores).

Run by the platform as ``python train.py --network lenet --num_epoch 15 ...`` (one
``--name value`` per mlsteam.yml param) with MLSTEAM_INPUT_DIR / MLSTEAM_OUTPUT_DIR
set, or standalone: ``python train.py --data_dir D --output_dir O [flags]``.
``python train.py --help`` lists every flag.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if not (HERE / "cls").is_dir():  # run from lab_templates/: use the classification template's
    sys.path.insert(1, str(HERE.parent / "classification"))

from reg.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(script=str(Path(__file__).resolve())))
