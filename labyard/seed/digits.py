"""The scikit-learn 8x8 handwritten digits, shipped as a seed dataset.

`digits.npz` holds the 1797 images of scikit-learn's ``digits.csv.gz`` (UCI ML
hand-written digits, test part) as uint8 0..255 (the original 0..16 scaled by
255/16 and rounded) plus their labels 0..9. :func:`write_digits_dataset` writes
them in MLSteam's folder format so the platform can seed a public dataset and
the template's tests can train on real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_folder

DATA_FILE = Path(__file__).with_name("digits.npz")
CLASS_NAMES = [str(d) for d in range(10)]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images, labels)``: uint8 (1797, 8, 8) and uint8 (1797,)."""
    with np.load(DATA_FILE) as data:
        return data["images"].copy(), data["labels"].copy()


def split_indices(
    labels: np.ndarray, *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, deterministic train/test split of sample indices."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = max(1, round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _write_split(root: Path, images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> None:
    for name in CLASS_NAMES:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in idx:
        path = root / CLASS_NAMES[int(labels[i])] / f"{int(i)}.png"
        Image.fromarray(images[i]).save(path)


def write_digits_dataset(dest: Path, *, test_fraction: float = 0.2, seed: int = 0) -> None:
    """Write ``dest/train/<class>/<n>.png`` and ``dest/test/<class>/<n>.png``.

    The folder is built in a temporary directory beside ``dest`` and renamed into
    place, so ``dest`` either does not exist or is complete. An existing,
    non-empty ``dest`` raises :class:`FileExistsError`.
    """
    images, labels = load_digits()
    train_idx, test_idx = split_indices(labels, test_fraction=test_fraction, seed=seed)
    with atomic_folder(dest) as tmp:
        _write_split(tmp / "train", images, labels, train_idx)
        _write_split(tmp / "test", images, labels, test_idx)
