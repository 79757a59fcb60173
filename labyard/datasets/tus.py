"""Uploads over HTTP: plain multipart, and the tus 1.0.0 resumable-upload protocol.

tus (https://tus.io/protocols/resumable-upload) is implemented here directly on FastAPI:
core protocol plus the creation, termination and expiration extensions. The subset we need
is small and precisely specified; the README says with figures why `tuspyserver` (a FastAPI
router) was not adopted. Endpoints, under /api/v1/datasets/{id}/uploads:

  OPTIONS              capabilities (Tus-Version, Tus-Extension, Tus-Max-Size)
  POST                 create: Upload-Length, Upload-Metadata (base64 `filename`, optional
                       `relativePath` for files of dropped folders, `folder`, `extract`)
                       -> 201 with Location
  HEAD   /{upload}     Upload-Offset: how many bytes the server holds (resume from there)
  PATCH  /{upload}     append bytes at Upload-Offset (Content-Type
                       application/offset+octet-stream); the last one places the file
  DELETE /{upload}     abandon the upload

Session cookies (with the X-CSRF-Token header) and bearer tokens are both accepted.
Bodies are streamed to a server-named work file, never read whole into memory.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from labyard.datasets import service, tasks, uploads
from labyard.datasets.models import DatasetUpload
from labyard.datasets.schemas import PlacedOut
from labyard.datasets.streaming import MultipartSink, append_body, parse_multipart
from labyard.db.oncommit import on_commit
from labyard.errors import Conflict, DomainError, InvalidInput, TooLarge
from labyard.projects.models import Role
from labyard.web.bodies import MULTIPART_SLACK, streams_body
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter()
TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
T = TypeVar("T")
_busy: set[str] = set()  # uploads a PATCH is writing right now (one process)


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call blocking database or file work off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------- plain multipart


@router.post("/datasets/{dataset_id}/files", response_model=list[PlacedOut], status_code=201)
@streams_body(lambda settings: settings.dataset_max_upload_bytes + MULTIPART_SLACK)
async def upload_files(
    dataset_id: int, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> list[PlacedOut]:
    """Upload files (multipart field `file`, repeatable; optional fields `path`, the target
    folder, and `extract`); streamed to disk, 413 past the size limit or the quota."""
    dataset = await _run(service.get_dataset_for_user, db, user, dataset_id, Role.WRITE)
    allowance = await _run(service.upload_allowance, db, settings, dataset)
    await _run(db.commit)  # hold no transaction while bytes arrive
    message = service.limit_message(settings, allowance)
    declared = int(request.headers.get("content-length") or 0)
    if declared > allowance + MULTIPART_SLACK:
        raise TooLarge(message)
    sink = MultipartSink(
        lambda: uploads.new_work_file(settings), allowance, message, settings.upload_max_files
    )
    try:
        try:
            await parse_multipart(request, sink)
        except RuntimeError:
            raise InvalidInput("Send the CSRF token in the X-CSRF-Token header.") from None
        if not sink.files:
            raise InvalidInput("Send the file in the multipart field 'file'.", field="file")
        placed = [
            await _run(
                uploads.place_file,
                db,
                settings,
                user=user,
                dataset=dataset,
                work_file=part.path,
                folder=sink.fields.get("path", ""),
                name=part.filename,
                extract=_truthy(sink.fields.get("extract")),
            )
            for part in sink.files
        ]
    finally:
        for part in sink.files:
            part.path.unlink(missing_ok=True)
    runner = tasks.runner_for(request.app)
    for item in placed:
        if item.task is not None:
            on_commit(db, functools.partial(runner.submit, item.task.id))
    return [
        PlacedOut(path=p.path, size=p.size, task_id=p.task.id if p.task else None) for p in placed
    ]


# ---------------------------------------------------------------- tus


def _tus_headers(upload: DatasetUpload | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if upload is not None:
        headers["Upload-Offset"] = str(upload.offset)
        headers["Upload-Length"] = str(upload.length)
        headers["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
    return headers


def _check_version(request: Request) -> Response | None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        return Response(
            status_code=412, headers={"Tus-Version": TUS_VERSION, "Tus-Resumable": TUS_VERSION}
        )
    return None


def parse_metadata(header: str) -> dict[str, str]:
    """The Upload-Metadata header: comma-separated `key base64value` pairs."""
    result: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key:
            continue
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(f"Upload-Metadata value of {key!r} is not base64.") from None
    return result


@router.options("/datasets/{dataset_id}/uploads")
def tus_options(dataset_id: int, settings: SettingsDep) -> Response:
    """What this tus server supports."""
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.dataset_max_upload_bytes),
        },
    )


@router.post("/datasets/{dataset_id}/uploads", status_code=201)
def tus_create(
    dataset_id: int, request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Create a resumable upload (tus creation); 413 over the size limit or quota."""
    if (refused := _check_version(request)) is not None:
        return refused
    try:
        length = int(request.headers["upload-length"])
    except (KeyError, ValueError):
        raise InvalidInput("Send Upload-Length (Upload-Defer-Length is not supported).") from None
    meta = parse_metadata(request.headers.get("upload-metadata", ""))
    name = meta.get("relativePath") or meta.get("filename") or ""
    upload = uploads.create_upload(
        db,
        settings,
        user=user,
        dataset_id=dataset_id,
        length=length,
        folder=meta.get("folder", ""),
        name=name,
        extract=_truthy(meta.get("extract")),
    )
    headers = _tus_headers(upload)
    headers["Location"] = f"/api/v1/datasets/{dataset_id}/uploads/{upload.id}"
    if length == 0:
        placed = uploads.complete_upload(db, settings, user=user, upload=upload)
        headers.update(_placed_headers(request, db, placed))
    return Response(status_code=201, headers=headers)


@router.head("/datasets/{dataset_id}/uploads/{upload_id}")
def tus_head(
    dataset_id: int, upload_id: str, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """How many bytes of the upload the server holds."""
    upload = uploads.get_upload(db, settings, user=user, dataset_id=dataset_id, upload_id=upload_id)
    return Response(status_code=200, headers=_tus_headers(upload))


def _placed_headers(request: Request, db: Session, placed: uploads.Placed) -> dict[str, str]:
    headers = {"Labyard-Path": base64.b64encode(placed.path.encode()).decode()}
    if placed.task is not None:  # the runner starts once the request's transaction committed
        on_commit(db, functools.partial(tasks.runner_for(request.app).submit, placed.task.id))
        headers["Labyard-Task"] = str(placed.task.id)
    return headers


@router.patch("/datasets/{dataset_id}/uploads/{upload_id}")
@streams_body(lambda settings: settings.dataset_max_upload_bytes)
async def tus_patch(
    dataset_id: int,
    upload_id: str,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Append bytes at Upload-Offset; the final chunk places the file in the dataset."""
    if (refused := _check_version(request)) is not None:
        return refused
    if request.headers.get("content-type") != "application/offset+octet-stream":
        return JSONResponse(
            {"detail": "Content-Type must be application/offset+octet-stream."}, 415
        )
    upload = await _run(
        uploads.get_upload, db, settings, user=user, dataset_id=dataset_id, upload_id=upload_id
    )
    if request.headers.get("upload-offset") != str(upload.offset):
        raise Conflict(f"Upload-Offset must be {upload.offset}, the bytes the server holds.")
    if upload.id in _busy:
        raise Conflict("Another request is writing this upload; ask HEAD and retry.")
    await _run(db.commit)  # hold no transaction while bytes arrive
    _busy.add(upload.id)
    try:
        await _append(request, settings, upload)
    except ClientDisconnect:
        pass  # what arrived is kept; the client resumes from HEAD's offset
    finally:
        _busy.discard(upload.id)
    await _run(uploads.record_progress, db, settings, upload=upload)
    headers = _tus_headers(upload)
    if upload.offset == upload.length:
        placed = await _run(uploads.complete_upload, db, settings, user=user, upload=upload)
        headers.update(_placed_headers(request, db, placed))
    return Response(status_code=204, headers=headers)


async def _append(request: Request, settings: Any, upload: DatasetUpload) -> None:
    """Stream the PATCH body onto the upload's work file; past Upload-Length undo and 413."""
    path = service.upload_file(settings, upload.id)
    start = upload.offset
    with path.open("ab") as out:
        try:
            await append_body(
                request,
                out,
                limit=upload.length - start,
                message="The request sends more bytes than the upload's Upload-Length.",
            )
        except DomainError:
            out.flush()
            os.truncate(path, start)
            raise


@router.delete("/datasets/{dataset_id}/uploads/{upload_id}", status_code=204)
def tus_terminate(
    dataset_id: int, upload_id: str, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Abandon an upload (tus termination)."""
    uploads.terminate_upload(db, settings, user=user, dataset_id=dataset_id, upload_id=upload_id)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})
