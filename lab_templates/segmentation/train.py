"""Train a UNet to segment images on a dataset of images/ + masks/ per split.

The platform runs ``python train.py`` with one ``--name value`` per mlsteam.yml param;
standalone, give ``--data_dir D --output_dir O``. ``--help`` lists every flag.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# cls/ is beside this file in a lab, in ../classification when run from lab_templates/
sys.path[:0] = [str(HERE), str(HERE.parent / "classification")]

from seg.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(script=str(Path(__file__).resolve())))
