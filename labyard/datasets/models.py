"""Tables of the datasets domain: datasets, background tasks (extraction), resumable uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labyard.auth.models import User
from labyard.db import Base, utcnow

# a project's dataset names are unique in it (uq_datasets_project_id); public ones among them
PUBLIC_NAME = "uq_datasets_public_name"


class Dataset(Base):
    """A folder of files owned by a project, or public (no project, read-only)."""

    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        Index(
            PUBLIC_NAME,
            "name",
            unique=True,
            sqlite_where=text("is_public"),
            postgresql_where=text("is_public"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), default=None, index=True
    )
    is_public: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    file_count: Mapped[int] = mapped_column(default=0)

    created_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def read_only(self) -> bool:
        """Public datasets are read-only for everyone."""
        return self.is_public


class DatasetTask(Base):
    """A background job on a dataset (extracting an archive): state, progress, message."""

    __tablename__ = "dataset_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="extract")
    # queued, running, moving, done, failed, cancelled
    status: Mapped[str] = mapped_column(String(16), default="queued")
    source_path: Mapped[str] = mapped_column(String(4096))
    target_path: Mapped[str] = mapped_column(String(4096), default="")
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    done_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    total_entries: Mapped[int] = mapped_column(default=0)
    done_entries: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(2000), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def finished(self) -> bool:
        """True once the task can no longer change."""
        return self.status in ("done", "failed", "cancelled")


class DatasetUpload(Base):
    """A resumable (tus) upload in progress; its bytes live in a server-named work file."""

    __tablename__ = "dataset_uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    target_path: Mapped[str] = mapped_column(String(4096))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    extract: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
