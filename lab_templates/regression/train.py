"""Fine-tune a CNN to predict one or more scores per image (a CSV of image -> scores), as
a job (each mlsteam.yml param becomes a flag) or standalone with --data_dir and --output_dir;
see ``python train.py --help``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# cls/ is beside this file in a lab, in ../classification when run from lab_templates/
sys.path[:0] = [str(HERE), str(HERE.parent / "classification")]

from reg.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(script=str(Path(__file__).resolve())))
