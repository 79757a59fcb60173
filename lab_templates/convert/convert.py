"""Convert a class-folder dataset into a new one: resized, split, class folders or TFRecord.

Run by the platform as ``python convert.py --resize_method ... --split ...`` (one
``--name value`` per mlsteam.yml param) with MLSTEAM_INPUT_DIR / MLSTEAM_OUTPUT_DIR
set, or standalone: ``python convert.py --data_dir D --output_dir O [flags]``.
``python convert.py --help`` lists every flag.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if not (HERE / "cls").is_dir():  # run from lab_templates/: the classification template's cls
    sys.path.insert(1, str(HERE.parent / "classification"))

from conversion.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
