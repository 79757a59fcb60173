"""The sessions JSON API: start, see, stop a lab's session; keep it running; list sessions."""

from __future__ import annotations

from fastapi import APIRouter

from labyard.sessions import service
from labyard.sessions.schemas import SessionOut, SessionStart
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["sessions"])


@router.post("/labs/{lab_id}/session", response_model=SessionOut)
def start_session(
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    body: SessionStart | None = None,
) -> SessionOut:
    """Start the lab's JupyterLab session (WRITE); a queued or running one is answered as is."""
    flavor = body.flavor if body is not None else None
    service.start_session(db, settings, user, lab_id, flavor=flavor)
    return SessionOut.of(service.get_session(db, settings, user, lab_id))


@router.get("/labs/{lab_id}/session", response_model=SessionOut)
def get_session(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> SessionOut:
    """The lab's session: state, reason, URL, GPUs, idle seconds, queue position (WRITE)."""
    return SessionOut.of(service.get_session(db, settings, user, lab_id))


@router.delete("/labs/{lab_id}/session", response_model=SessionOut)
def stop_session(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> SessionOut:
    """Stop the lab's session (WRITE); stopping a stopped one changes nothing."""
    service.stop_session(db, user, lab_id)
    return SessionOut.of(service.get_session(db, settings, user, lab_id))


@router.post("/labs/{lab_id}/session/restart", response_model=SessionOut)
def restart_session(
    lab_id: int,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    body: SessionStart | None = None,
) -> SessionOut:
    """Stop the lab's session and queue a fresh one (WRITE)."""
    flavor = body.flavor if body is not None else None
    service.restart_session(db, settings, user, lab_id, flavor=flavor)
    return SessionOut.of(service.get_session(db, settings, user, lab_id))


@router.post("/labs/{lab_id}/session/keep", response_model=SessionOut)
def keep_running(
    lab_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> SessionOut:
    """Count as activity now, so the idle timer starts over (WRITE)."""
    return SessionOut.of(service.keep_running(db, settings, user, lab_id))


@router.get("/sessions", response_model=list[SessionOut])
def list_sessions(user: CurrentUser, db: SessionDep, settings: SettingsDep) -> list[SessionOut]:
    """The queued and running sessions I may use (admins: all of them)."""
    return [SessionOut.of(v) for v in service.list_sessions(db, settings, user)]
