"""Tables of the notifications domain: subscriptions, and the deliveries that are both the
outbox (pending rows the delivery worker sends) and the delivery log (the rows it sent)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from labyard.db import Base, utcnow


class Event(enum.StrEnum):
    """What a subscription can be told about."""

    JOB_FINISHED = "job.finished"  # succeeded, stopped or pruned (the payload says which)
    JOB_FAILED = "job.failed"
    SWEEP_FINISHED = "sweep.finished"  # the last job of a grid sweep ended
    SEARCH_FINISHED = "search.finished"  # a search concluded (finished or stopped)
    PING = "ping"  # "Send a test" on the settings page; every subscription gets it


class Kind(enum.StrEnum):
    """How a subscription is told."""

    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryState(enum.StrEnum):
    """pending -> delivered | failed (after the last attempt or a permanent error) | refused
    (the address is not allowed, or e-mail is not configured)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED = "refused"


class Subscription(Base):
    """A webhook or an e-mail address told about some events: a user's own (their jobs,
    sweeps and searches, `project_id` empty) or a project's (every job of it, kept by OWNers)."""

    __tablename__ = "notify_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, default=None
    )
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))  # the URL or the e-mail address
    secret: Mapped[str] = mapped_column(String(100), default="")  # a webhook's HMAC key
    events: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """One event for one subscription: due at `next_attempt_at` while pending, then the
    outcome of its last attempt (kept for the delivery log, the newest few per subscription)."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (Index("ix_notify_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("notify_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(String(500), default="")
    response_excerpt: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
