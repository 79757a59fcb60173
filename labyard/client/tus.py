"""A tus 1.0.0 client for the datasets' resumable uploads (server: labyard/datasets/tus.py).

The upload's URL is noted in the config folder as soon as the server creates it, keyed by
the file's path, size and modification time; a rerun asks HEAD how many bytes the server
holds and sends the rest, so an upload survives a broken connection or a server restart.
Each PATCH streams one chunk from the file (never the whole chunk in memory).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from labyard.client import config
from labyard.client.http import Api, ApiError

TUS = {"Tus-Resumable": "1.0.0"}
READ_SIZE = 1024 * 1024
RETRIES = 3  # connection failures in a row before giving up (a rerun resumes)
Progress = Callable[[int], None]  # told the bytes done so far


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items() if v)


def _read(path: Path, start: int, length: int, progress: Progress) -> Iterator[bytes]:
    """`length` bytes of the file from `start`, read a MiB at a time; `progress` is told
    the offset reached."""
    with path.open("rb") as fh:
        fh.seek(start)
        sent = 0
        while sent < length:
            data = fh.read(min(READ_SIZE, length - sent))
            if not data:
                raise ApiError(f"{path} became shorter while it was uploaded")
            sent += len(data)
            progress(start + sent)
            yield data


class Upload:
    """One file's resumable upload into `folder/name` of a dataset."""

    def __init__(
        self,
        api: Api,
        dataset_id: int,
        path: Path,
        *,
        folder: str,
        name: str,
        chunk: int,
        extract: bool = False,
    ) -> None:
        self.api, self.dataset_id, self.path = api, dataset_id, path
        self.folder, self.name, self.chunk, self.extract = folder, name, chunk, extract
        self.length = path.stat().st_size
        self.key = config.upload_key(api.url, dataset_id, f"{folder}/{name}", path)
        self.resumed_at: int | None = None
        self.location, self.offset = "", 0

    def prepare(self) -> None:
        """Find the upload's URL and the bytes the server holds: the remembered upload when
        the server still has it (`resumed_at` says from where), else a new one."""
        known = config.remembered_upload(self.key)
        if known:
            try:
                head = self.api.send("HEAD", known, headers=TUS)
                self.location, self.offset = known, int(head.headers["upload-offset"])
                self.resumed_at = self.offset
                return
            except ApiError as exc:
                if exc.status != 404:
                    raise
        created = self.api.send(
            "POST",
            f"/api/v1/datasets/{self.dataset_id}/uploads",
            headers={
                **TUS,
                "Upload-Length": str(self.length),
                "Upload-Metadata": _metadata(
                    filename=self.path.name,
                    relativePath=self.name,
                    folder=self.folder,
                    extract="true" if self.extract else "",
                ),
            },
        )
        self.location, self.offset = created.headers["location"], 0 if self.length else -1
        if self.length:
            config.remember_upload(self.key, self.location)

    def run(self, progress: Progress) -> dict[str, Any]:
        """Send the bytes the server lacks; the placed file as the multipart API shows it."""
        if not self.location:
            self.prepare()
        location, offset = self.location, self.offset
        if offset < 0:  # an empty file is placed on creation
            return {"path": self.name, "size": 0, "task_id": None}
        headers: httpx.Headers | None = None
        failures, ask = 0, False
        while offset < self.length or headers is None:
            try:
                if ask:
                    head = self.api.send("HEAD", location, headers=TUS)
                    offset, ask = int(head.headers["upload-offset"]), False
                progress(offset)
                headers = self._patch(location, offset, progress)
                offset, failures = int(headers["upload-offset"]), 0
            except ApiError as exc:
                failures += 1
                if exc.status not in (None, 409) or failures > RETRIES:
                    raise ApiError(
                        f"{exc.message} (the upload of {self.path} stopped at byte {offset} of "
                        f"{self.length}; run the same command again to resume)",
                        exc.status,
                    ) from None
                time.sleep(0.25 * 2**failures)
                ask = True
        config.remember_upload(self.key, None)
        placed = base64.b64decode(headers.get("labyard-path", "")).decode() or self.name
        task = headers.get("labyard-task")
        return {"path": placed, "size": self.length, "task_id": int(task) if task else None}

    def _patch(self, location: str, offset: int, progress: Progress) -> httpx.Headers:
        """Send one chunk from `offset`; the server's answer headers."""
        size = min(self.chunk, self.length - offset)
        response = self.api.send(
            "PATCH",
            location,
            headers={
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(size),
            },
            content=_read(self.path, offset, size, progress),
            timeout=httpx.Timeout(600.0, connect=10.0),
        )
        return response.headers
