"""The sample datasets Labyard ships: each is written from data in this package (nothing
is downloaded) and seeded as a public read-only dataset at first start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path


@dataclass(frozen=True)
class SampleDataset:
    """A shipped sample: its public dataset name, description and writer.

    `writer` is ``"module:function"`` under ``labyard.seed``; the function takes the
    (absent or empty) destination folder and fills it.
    """

    name: str
    description: str
    writer: str

    def write(self, dest: Path) -> None:
        """Write the sample into `dest`."""
        module, function = self.writer.split(":")
        write: Callable[[Path], None] = getattr(import_module(f"labyard.seed.{module}"), function)
        write(dest)


SAMPLE_DATASETS: tuple[SampleDataset, ...] = (
    SampleDataset(
        "digits",
        "scikit-learn's 8x8 handwritten digits as PNG files (train/ and test/).",
        "digits:write_digits_dataset",
    ),
    SampleDataset(
        "shapes",
        "Generated 64x64 grayscale cell-like shapes with CLB-style masks (train/val/test, "
        "images/ + masks/): the segmentation template's sample.",
        "shapes:write_shapes_dataset",
    ),
    SampleDataset(
        "perceptions",
        "Generated 32x32 street-like scenes with greenery, brightness and crowding scores "
        "measured from each image (train.csv, val.csv, test.csv + images/): the regression "
        "template's sample.",
        "perceptions:write_perceptions_dataset",
    ),
)
