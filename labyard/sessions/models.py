"""Tables of the sessions domain: one row per start of a lab's JupyterLab.

A session runs as a job (its GPUs, CPUs and memory held by the jobs scheduler, its process or
container adopted after a restart like any job's); the row ties that job to its lab. The
lab's current session is its newest row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labyard.auth.models import User
from labyard.db import Base, utcnow
from labyard.jobs.models import Job


class LabSession(Base):
    """One start of a lab's JupyterLab: the job that runs it."""

    __tablename__ = "lab_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(lazy="joined")
    started_by: Mapped[User | None] = relationship(lazy="joined")
