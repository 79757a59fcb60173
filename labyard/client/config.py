"""The client's files in `$XDG_CONFIG_HOME/labyard` (default ~/.config/labyard): the login
(`credentials.json`) and unfinished uploads (`uploads.json`), written 0600 in a 0700 folder.
`LABYARD_URL` and `LABYARD_TOKEN` override the stored login."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CREDENTIALS = "credentials.json"
UPLOADS = "uploads.json"
LOGIN_HINT = (
    "not logged in: run `labyard login URL --username NAME --password-stdin` "
    "(or set LABYARD_URL and LABYARD_TOKEN)"
)


class NotLoggedIn(Exception):
    """No stored login and no LABYARD_URL/LABYARD_TOKEN."""

    def __init__(self) -> None:
        super().__init__(LOGIN_HINT)


@dataclass
class Credentials:
    """Where the server is and the token for it (a refresh token when logged in here)."""

    url: str
    access_token: str
    refresh_token: str = ""
    username: str = ""
    from_env: bool = False


def config_dir() -> Path:
    """The client's folder: $XDG_CONFIG_HOME/labyard, else ~/.config/labyard."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "labyard"


def _private_dir() -> Path:
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def write_private(name: str, data: Any) -> Path:
    """Write JSON to a file of the config folder: created 0600, renamed into place."""
    path = _private_dir() / name
    tmp = path.with_name(f".{name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
    return path


def read_json(name: str) -> dict[str, Any]:
    """A JSON file of the config folder ({} when absent or unreadable)."""
    try:
        data = json.loads((config_dir() / name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_credentials() -> Credentials:
    """The login in use: LABYARD_URL/LABYARD_TOKEN when set, else the stored one."""
    stored = stored_credentials()
    url = os.environ.get("LABYARD_URL") or (stored.url if stored else "")
    token = os.environ.get("LABYARD_TOKEN")
    if token:
        if not url:
            raise NotLoggedIn()
        return Credentials(url=url.rstrip("/"), access_token=token, from_env=True)
    if stored is None:
        raise NotLoggedIn()
    stored.url = url.rstrip("/")
    return stored


def stored_credentials() -> Credentials | None:
    """The login stored by `labyard login` (the environment ignored), or None."""
    stored = read_json(CREDENTIALS)
    if not stored.get("access_token") or not stored.get("url"):
        return None
    return Credentials(
        url=str(stored["url"]).rstrip("/"),
        access_token=stored["access_token"],
        refresh_token=stored.get("refresh_token", ""),
        username=stored.get("username", ""),
    )


def save_credentials(credentials: Credentials) -> Path:
    """Store the login (never one that came from the environment)."""
    data = asdict(credentials)
    del data["from_env"]
    return write_private(CREDENTIALS, data)


def forget_credentials() -> bool:
    """Remove the stored login; whether there was one."""
    try:
        (config_dir() / CREDENTIALS).unlink()
    except FileNotFoundError:
        return False
    return True


def upload_key(server: str, dataset_id: int, target: str, path: Path) -> str:
    """Which unfinished upload a file resumes: the server, dataset and target, and the file
    by absolute path, size and modification time (a changed file starts over)."""
    info = path.stat()
    return f"{server}|{dataset_id}|{target}|{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"


def remembered_upload(key: str) -> str | None:
    """The tus URL of an unfinished upload of this file, if one was started."""
    entry = read_json(UPLOADS).get(key)
    return entry.get("location") if isinstance(entry, dict) else None


def remember_upload(key: str, location: str | None) -> None:
    """Note (or, with None, forget) the tus URL of an upload in progress."""
    uploads = read_json(UPLOADS)
    if location is None:
        if uploads.pop(key, None) is None:
            return
    else:
        uploads[key] = {"location": location}
    write_private(UPLOADS, uploads)
