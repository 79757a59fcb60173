"""Uploaded images of inference jobs ("try one image", inference over several images).

Every image of one request is checked before anything is written (its first bytes say it
is an image, at most MAX_IMAGE_BYTES, a file name that stays one name in the folder, no two
alike; at most MAX_UPLOAD_FILES images and `weights_upload_max_bytes` in all), then all of
them go into one fresh folder of their own under <data>/weights/.uploads/. The folder goes
when its job ends (upload_job_ended, wired in labyard.app), or with the orphans of jobs
deleted before they ran.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from labyard.config import Settings
from labyard.db.oncommit import on_commit
from labyard.errors import InvalidInput
from labyard.jobs.models import LIVE_STATUSES, Job, JobStatus
from labyard.paths import clean_name

UPLOAD_NAME = "upload"  # the input folder name of a job over uploaded images
MAX_IMAGE_BYTES = 10 * 1024**2  # one image
MAX_UPLOAD_FILES = 200  # images of one request
IMAGE_MAGIC = {  # leading bytes -> suffix; only these are taken as images
    b"\x89PNG\r\n\x1a\n": ".png",
    b"\xff\xd8\xff": ".jpg",
    b"BM": ".bmp",
    b"GIF87a": ".gif",
    b"GIF89a": ".gif",
}
SUFFIXES = {  # a detected suffix -> the names' suffixes kept as they are
    ".png": {".png"},
    ".jpg": {".jpg", ".jpeg"},
    ".bmp": {".bmp"},
    ".gif": {".gif"},
    ".webp": {".webp"},
}
NOT_AN_IMAGE = "Not an image (PNG, JPEG, BMP, GIF or WebP)"

Image = tuple[str, BinaryIO]  # the client's file name, the image's bytes (seekable)


def mib(size: int) -> str:
    """A byte count in MiB (KiB below one), as the limits' messages say it."""
    return f"{size / 1024**2:g} MiB" if size >= 1024**2 else f"{size / 1024:g} KiB"


def image_suffix(data: bytes, *, field: str = "image", label: str = "") -> str:
    """The suffix of an image's (first) bytes; InvalidInput for anything that is not one."""
    for magic, suffix in IMAGE_MAGIC.items():
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    raise InvalidInput(f"{NOT_AN_IMAGE}{f': {label}' if label else ''}.", field=field)


def upload_name(filename: str, suffix: str, *, field: str) -> str:
    """The name an image is saved (and predicted) under: the client's file name, cleaned
    (clean_name), with `suffix` unless it already ends in one of its kind; InvalidInput
    naming the file for a name that is empty, hidden, or holds NUL, '/' or '\\'."""
    try:
        name = clean_name(filename or "image", field=field)
    except InvalidInput as exc:
        message = f"File name {filename!r} is refused: {exc.message}"
        raise InvalidInput(message, field=field) from None
    if name.startswith("."):
        raise InvalidInput(
            f"File name {filename!r} is refused: names must not start with '.'.", field=field
        )
    path = Path(name)
    if path.suffix.lower() in SUFFIXES[suffix]:
        return name
    return clean_name((path.stem if path.suffix else name) + suffix, field=field)


def _size(stream: BinaryIO) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def checked(settings: Settings, images: Sequence[Image], *, field: str) -> list[Image]:
    """(saved name, bytes) of every image once every limit holds (nothing is written);
    InvalidInput naming the first file that breaks one. A nameless empty part (a browser's
    file input with nothing chosen) is no image."""
    images = [(name, stream) for name, stream in images if name or _size(stream)]
    if not images:
        raise InvalidInput("Choose at least one image.", field=field)
    if len(images) > MAX_UPLOAD_FILES:
        raise InvalidInput(
            f"At most {MAX_UPLOAD_FILES} images at once ({len(images)} were sent).", field=field
        )
    saved: dict[str, Image] = {}  # saved name -> (the client's file name, bytes)
    stems: dict[str, str] = {}  # a saved name's stem, lower-cased -> the client's file name
    total = 0
    for filename, stream in images:
        label = repr(filename)
        size = _size(stream)
        if size == 0:
            raise InvalidInput(f"The image {label} is empty.", field=field)
        if size > MAX_IMAGE_BYTES:
            raise InvalidInput(
                f"The image {label} is larger than {mib(MAX_IMAGE_BYTES)}.", field=field
            )
        total += size
        suffix = image_suffix(stream.read(16), field=field, label=label)
        stream.seek(0)
        name = upload_name(filename, suffix, field=field)
        stem = Path(name).stem.lower()  # masks/<stem>.png: a.jpg and A.png would collide
        if stem in stems:
            raise InvalidInput(
                f"Two files would share the name {Path(name).stem!r}: {stems[stem]!r} and "
                f"{filename!r}; rename one.",
                field=field,
            )
        stems[stem] = filename
        saved[name] = (filename, stream)
    if total > settings.weights_upload_max_bytes:
        raise InvalidInput(
            f"The images are larger than {mib(settings.weights_upload_max_bytes)} together.",
            field=field,
        )
    return [(name, stream) for name, (_filename, stream) in saved.items()]


def save_uploads(settings: Settings, images: Sequence[Image], *, field: str = "files") -> Path:
    """Every image (`checked` first) in one fresh folder of its own; the folder. A failure
    while writing removes the folder again."""
    named = checked(settings, images, field=field)
    folder = uploads_dir(settings) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        for name, stream in named:
            with (folder / name).open("xb") as out:
                shutil.copyfileobj(stream, out)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def uploads_dir(settings: Settings) -> Path:
    """Where uploaded inputs live (each request's in a folder of its own)."""
    return settings.data_dir / "weights" / ".uploads"


def drop_upload(folder: Path) -> None:
    """Remove an upload folder whose job could not be created."""
    with contextlib.suppress(OSError):
        shutil.rmtree(folder)


# ---------------------------------------------------------------- cleanup

UPLOAD_FOLDER_RE = re.compile(r"^[0-9a-f]{32}$")  # save_uploads' uuid4().hex folders
ORPHAN_AGE = timedelta(hours=1)  # an unused upload this old lost its job (deleted queued)


def _upload_folders(job: Job) -> list[Path]:
    """The upload folders a job reads (an upload input under weights/.uploads)."""
    return _upload_folders_of(job.datasets or [])


def _upload_folders_of(mounts: list[dict[str, object]]) -> list[Path]:
    found = []
    for mount in mounts:
        folder = Path(str(mount.get("host_path", "")))
        if (
            mount.get("name") == UPLOAD_NAME
            and mount.get("dataset_id") is None
            and UPLOAD_FOLDER_RE.match(folder.name)
            and folder.parent.name == ".uploads"
            and folder.parent.parent.name == "weights"
        ):
            found.append(folder)
    return found


def _orphans(db: Session, uploads: Path) -> list[Path]:
    """Upload folders over ORPHAN_AGE old that no queued or live job reads (their job was
    deleted before it ran). The folders are looked at first: the jobs (only their inputs)
    are read only when an aged one exists, not on every upload job's end."""
    cutoff = (datetime.now(UTC) - ORPHAN_AGE).timestamp()
    aged = []
    with contextlib.suppress(OSError):
        for folder in uploads.iterdir():
            if UPLOAD_FOLDER_RE.match(folder.name):
                with contextlib.suppress(OSError):
                    if folder.stat().st_mtime < cutoff:
                        aged.append(folder)
    if not aged:
        return []
    waiting = [JobStatus.QUEUED, *LIVE_STATUSES]
    used = {
        str(folder)
        for mounts in db.scalars(select(Job.datasets).where(Job.status.in_(waiting)))
        for folder in _upload_folders_of(mounts or [])
    }
    return [folder for folder in aged if str(folder) not in used]


def upload_job_ended(job: Job) -> None:
    """jobs.JOB_FINISHED handler (wired in labyard.app): once the job's final status is
    committed, its uploaded images' folder goes, with the orphans of deleted queued jobs."""
    own = _upload_folders(job)
    db = object_session(job)
    if not own or db is None:
        return
    doomed = [*own, *_orphans(db, own[0].parent)]

    def remove() -> None:
        for folder in doomed:
            shutil.rmtree(folder, ignore_errors=True)

    on_commit(db, remove)
