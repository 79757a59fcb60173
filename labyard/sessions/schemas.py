"""JSON shapes of the sessions API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from labyard.sessions.service import SessionView


class SessionStart(BaseModel):
    """Start a lab's session, on the lab's flavor unless one is named."""

    flavor: str | None = Field(default=None, max_length=32)


class SessionOut(BaseModel):
    """A lab's session: `state` is queued (see `queue_position`), starting (until JupyterLab
    answers), running (open `url` in a browser, same login) or stopped (see `reason`)."""

    lab_id: int
    lab_name: str
    project_id: int
    project_name: str
    state: Literal["queued", "starting", "running", "stopped"]
    reason: str
    url: str
    gpus: list[str]
    flavor: str | None
    idle_seconds: float | None
    idle_limit_seconds: float
    queue_position: int | None
    stopping: bool
    job_id: int | None
    started_by: str | None
    started_at: datetime | None

    @classmethod
    def of(cls, view: SessionView) -> SessionOut:
        """The API shape of a session's view."""
        row = view.session
        job = row.job if row is not None else None
        return cls(
            lab_id=view.lab_id,
            lab_name=view.lab_name,
            project_id=view.project_id,
            project_name=view.project_name,
            state=view.state,  # type: ignore[arg-type]
            reason=view.reason,
            url=view.url,
            gpus=view.gpus,
            flavor=job.flavor if job is not None else None,
            idle_seconds=None if view.idle_seconds is None else round(view.idle_seconds, 1),
            idle_limit_seconds=view.idle_limit_seconds,
            queue_position=view.queue_position,
            stopping=view.stopping,
            job_id=job.id if job is not None else None,
            started_by=row.started_by.username if row is not None and row.started_by else None,
            started_at=job.started_at if job is not None else None,
        )
