"""Locate the folders that ship with Labyard (pages, static files, migrations, templates)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED = ("templates", "static", "lab_templates", "migrations", "runner")


def resource_dir(name: str) -> Path:
    """Return the folder `name`: inside the installed package, else at the source checkout's top."""
    if name not in BUNDLED:
        raise ValueError(f"unknown resource folder {name!r}")
    installed = _PACKAGE_DIR / name
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"resource folder {name!r} is missing from this installation")
