"""Tables of the tensorboard domain: one row per TensorBoard process started for log dirs."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labyard.auth.models import User
from labyard.db import Base, utcnow


class TensorBoardStatus(enum.StrEnum):
    """An instance's state: started and not answering yet, answering, or gone."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


LIVE_STATUSES = (TensorBoardStatus.STARTING, TensorBoardStatus.RUNNING)


class TensorBoardInstance(Base):
    """A TensorBoard process on 127.0.0.1:<port> serving a set of named log dirs."""

    __tablename__ = "tensorboards"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    started_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # sha256 of the sorted log dir set: the same set asked again reuses a live instance
    key: Mapped[str] = mapped_column(String(64), index=True)
    logdir_spec: Mapped[dict[str, str]] = mapped_column(JSON)  # run name -> absolute path
    port: Mapped[int | None] = mapped_column(default=None)
    pid: Mapped[int | None] = mapped_column(default=None)
    # when the OS started the process (tells our process from a later one reusing the pid)
    process_started_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default=TensorBoardStatus.STARTING)
    last_access_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    started_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def url(self) -> str:
        """Where the proxied TensorBoard answers."""
        return f"/tensorboard/{self.id}/"

    @property
    def run_names(self) -> list[str]:
        """The names of the runs it shows, sorted."""
        return sorted(self.logdir_spec)
