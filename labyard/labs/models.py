"""Tables of the labs domain: labs and the datasets attached to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labyard.datasets.models import Dataset
from labyard.db import Base, utcnow
from labyard.projects.models import Project


class Lab(Base):
    """A project's working copy of a template (or a blank one): code, mlsteam.yml, flavor."""

    __tablename__ = "labs"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(11))
    template: Mapped[str | None] = mapped_column(String(100), default=None)
    flavor: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship(lazy="joined")
    attachments: Mapped[list[LabDataset]] = relationship(
        back_populates="lab", cascade="all, delete-orphan", passive_deletes=True
    )


class LabDataset(Base):
    """A dataset attached to a lab; jobs see it at /mlsteam/input/<dataset name>."""

    __tablename__ = "lab_datasets"
    __table_args__ = (UniqueConstraint("lab_id", "dataset_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lab_id: Mapped[int] = mapped_column(ForeignKey("labs.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lab: Mapped[Lab] = relationship(back_populates="attachments")
    dataset: Mapped[Dataset] = relationship(lazy="joined")
