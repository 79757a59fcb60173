"""A lab's files as people reach them (pages and API): one permission check, then labs.files.

Looking (list, read, the parsed mlsteam.yml) needs READ in the lab's project; changing
(write, create, upload, new folder, rename, delete) needs WRITE and ends the request's
transaction first, so slow file work holds no database lock (service.lab_for_file_work).
Routers and pages call these and never choose a role themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.datasets.files import Entry
from labyard.errors import NotFound
from labyard.labs import files, service
from labyard.labs.models import Lab
from labyard.mlsteam import LabConfig
from labyard.paths import resolve_existing
from labyard.projects.models import Role


def lab_for_files(db: Session, user: User, lab_id: int, *, change: bool) -> Lab:
    """The one permission check for a lab's files: READ to look, WRITE to change."""
    if change:
        return service.lab_for_file_work(db, user, lab_id)
    return service.get_lab(db, user, lab_id, Role.READ)


def list_files(
    db: Session, user: User, settings: Settings, lab_id: int, path: str = ""
) -> tuple[str, list[Entry]]:
    """The folder `path` of the lab and its entries (READ)."""
    return files.list_files(settings, lab_for_files(db, user, lab_id, change=False), path)


def read_text(db: Session, user: User, settings: Settings, lab_id: int, path: str) -> str:
    """A text file of the lab (READ)."""
    return files.read_text(settings, lab_for_files(db, user, lab_id, change=False), path)


def file_path(db: Session, user: User, settings: Settings, lab_id: int, path: str) -> Path:
    """A file of the lab, resolved inside its folder (READ), to view or download."""
    lab = lab_for_files(db, user, lab_id, change=False)
    target = resolve_existing(files.lab_root(settings, lab), path)
    if not target.is_file():
        raise NotFound("No such file.")
    return target


def read_config(db: Session, user: User, settings: Settings, lab_id: int) -> LabConfig:
    """The lab's parsed mlsteam.yml (READ)."""
    return files.read_config(settings, lab_for_files(db, user, lab_id, change=False))


def write_text(
    db: Session, user: User, settings: Settings, lab_id: int, path: str, content: str
) -> str:
    """Create or overwrite a text file (WRITE); its relative path."""
    return files.write_text(settings, lab_for_files(db, user, lab_id, change=True), path, content)


def create_file(db: Session, user: User, settings: Settings, lab_id: int, path: str) -> str:
    """Create an empty file (WRITE); its relative path."""
    return files.create_file(settings, lab_for_files(db, user, lab_id, change=True), path)


def upload(
    db: Session,
    user: User,
    settings: Settings,
    lab_id: int,
    path: str,
    filename: str,
    stream: BinaryIO,
) -> str:
    """Store an uploaded file at `path` (WRITE); its relative path."""
    lab = lab_for_files(db, user, lab_id, change=True)
    return files.upload(settings, lab, path, filename, stream)


def make_folder(db: Session, user: User, settings: Settings, lab_id: int, path: str) -> str:
    """Create a folder (WRITE); its relative path."""
    return files.make_folder(settings, lab_for_files(db, user, lab_id, change=True), path)


def rename(
    db: Session, user: User, settings: Settings, lab_id: int, path: str, new_path: str
) -> str:
    """Rename or move a file or folder (WRITE); the new relative path."""
    return files.rename(settings, lab_for_files(db, user, lab_id, change=True), path, new_path)


def delete(db: Session, user: User, settings: Settings, lab_id: int, path: str) -> None:
    """Delete a file or folder (WRITE)."""
    files.delete(settings, lab_for_files(db, user, lab_id, change=True), path)
