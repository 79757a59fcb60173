"""Reading a dataset: folder listings, files to download, image thumbnails and previews."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from labyard import paths
from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets import files, service
from labyard.datasets.models import Dataset
from labyard.errors import InvalidInput, NotFound

THUMB_SIZES = {"thumb": 96, "preview": 1024}
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class Folder:
    """A folder of a dataset with its entries and the path to it."""

    dataset: Dataset
    path: str
    entries: list[files.Entry]

    @property
    def crumbs(self) -> list[tuple[str, str]]:
        """(name, path) of each folder from the root down to this one."""
        parts = self.path.split("/") if self.path else []
        return [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]

    @property
    def parent(self) -> str | None:
        """The parent folder's path, None at the root."""
        return None if not self.path else self.path.rpartition("/")[0]


def list_folder(
    db: Session, settings: Settings, *, user: User, dataset_id: int, path: str = ""
) -> Folder:
    """The entries of folder `path` (READ)."""
    dataset = service.get_dataset_for_user(db, user, dataset_id)
    root = service.dataset_dir(settings, dataset)
    folder = paths.resolve_existing(root, path)
    if not folder.is_dir():
        raise InvalidInput(f"{path!r} is a file, not a folder.", field="path")
    return Folder(dataset, paths.relative(root, folder), files.list_folder(root, folder))


def open_entry(
    db: Session, settings: Settings, *, user: User, dataset_id: int, path: str
) -> tuple[Dataset, Path]:
    """The dataset and the resolved file or folder at `path` (READ), for downloading."""
    dataset = service.get_dataset_for_user(db, user, dataset_id)
    return dataset, paths.resolve_existing(service.dataset_dir(settings, dataset), path)


def thumbnail(
    db: Session, settings: Settings, *, user: User, dataset_id: int, path: str, size: str
) -> Path:
    """A PNG thumbnail (or preview) of the image at `path`, made once and cached."""
    if size not in THUMB_SIZES:
        raise InvalidInput("size must be 'thumb' or 'preview'.", field="size")
    _, image = open_entry(db, settings, user=user, dataset_id=dataset_id, path=path)
    if not image.is_file() or not image.name.lower().endswith(files.IMAGE_SUFFIXES):
        raise NotFound("No such image.")
    info = image.stat()
    key = hashlib.sha256(f"{image}\x00{info.st_mtime_ns}\x00{info.st_size}".encode()).hexdigest()
    cache = settings.data_dir / "cache" / "thumbnails" / str(dataset_id)
    target = cache / f"{key}-{size}.png"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(image) as opened:
            opened.thumbnail((THUMB_SIZES[size], THUMB_SIZES[size]))
            small: Image.Image = opened
            if small.mode not in ("RGB", "RGBA", "L", "LA"):
                small = small.convert("RGBA")
            tmp = cache / f".{secrets.token_hex(8)}.png"
            small.save(tmp, "PNG")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise NotFound("This file is not an image that can be previewed.") from None
    os.replace(tmp, target)
    return target
