"""Tables of the projects domain."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labyard.auth.models import User
from labyard.db import Base, utcnow


class Role(enum.IntEnum):
    """A member's role; a higher value includes every right of the lower ones."""

    READ = 1
    WRITE = 2
    OWN = 3


# Job priorities by name, as stored in `Job.priority` and `Project.default_priority`.
PRIORITIES: dict[str, int] = {"low": -1, "normal": 0, "high": 1}


def priority_name(value: int) -> str:
    """The word for a stored priority (values outside -1..1, from older rows, clamp)."""
    if value >= 1:
        return "high"
    return "low" if value < 0 else "normal"


class Project(Base):
    """The unit of sharing: labs, datasets and jobs belong to a project."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(2000), default="")
    # the priority of its new jobs when the submitter picks none: -1 low, 0 normal, 1 high
    default_priority: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class Membership(Base):
    """A user's role in a project."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=8, values_callable=lambda e: [m.name for m in e])
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    project: Mapped[Project] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(lazy="joined")
