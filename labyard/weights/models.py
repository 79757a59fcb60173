"""The weights table: a model file copied from a finished job's output into the weights store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labyard.auth.models import User
from labyard.db import Base, utcnow

FORMATS = ("onnx", "pytorch_state_dict", "savedmodel", "keras_h5")


class Weights(Base):
    """A registered model of a project (public ones are read-only for everyone)."""

    __tablename__ = "weights"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    is_public: Mapped[bool] = mapped_column(default=False)
    framework: Mapped[str] = mapped_column(String(32), default="")  # pytorch, tensorflow
    format: Mapped[str] = mapped_column(String(32))  # one of FORMATS
    task: Mapped[str] = mapped_column(String(32), default="")  # classification, ...
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    input_shape: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [C, H, W], None: any
    datasets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # {id, name}
    metrics: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)  # final values
    file_name: Mapped[str] = mapped_column(String(255))  # the registered file (or folder)
    files: Mapped[list[str]] = mapped_column(JSON, default=list)  # every file kept, relative
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    source_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None, index=True
    )
    source_job_name: Mapped[str] = mapped_column(String(200), default="")
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("weights.id", ondelete="SET NULL"), default=None
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def read_only(self) -> bool:
        """Public weights are read-only for everyone."""
        return self.is_public
