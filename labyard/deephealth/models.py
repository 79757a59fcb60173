"""DeepHealth's tables: the client ids an administrator registered (besides the setting's),
and the profile fields (e-mail, names) its front-end edits, which Labyard's users lack."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labyard.auth.models import User
from labyard.db import Base, utcnow


class DeepHealthClient(Base):
    """A DeepHealth front-end (OAuth2 public client) allowed to log users in."""

    __tablename__ = "deephealth_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    created_by: Mapped[User | None] = relationship(lazy="joined")


class DeepHealthProfile(Base):
    """A user's e-mail and names as DeepHealth's `PUT /auth/user/` sets them."""

    __tablename__ = "deephealth_profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(254), default="")
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
