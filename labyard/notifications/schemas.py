"""The JSON shapes of the notifications API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from labyard.notifications.guard import MAX_EMAIL, MAX_URL
from labyard.notifications.models import Delivery, Subscription

EventName = Literal["job.finished", "job.failed", "sweep.finished", "search.finished"]


class SubscriptionIn(BaseModel):
    """A new webhook (`url`) or e-mail (`email`) subscription; with `project_id`, the
    project's (every job of it; needs OWN), else my own (my jobs, sweeps and searches)."""

    kind: Literal["webhook", "email"] = "webhook"
    url: str | None = Field(default=None, max_length=MAX_URL, description="http(s) URL")
    email: str | None = Field(default=None, max_length=MAX_EMAIL)
    events: list[EventName] = Field(min_length=1, max_length=4)
    project_id: int | None = None


class SubscriptionOut(BaseModel):
    """A subscription (its secret is shown only when it is made)."""

    id: int
    kind: str
    target: str
    events: list[str]
    project_id: int | None
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    """A new subscription with its webhook signing secret, shown this once."""

    secret: str


class DeliveryOut(BaseModel):
    """One delivery of the log: the event, how its last attempt went, when."""

    id: int
    event: str
    state: str
    attempts: int
    status_code: int | None
    error: str
    response_excerpt: str
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None


def subscription_out(sub: Subscription) -> SubscriptionOut:
    """The API shape of a subscription."""
    return SubscriptionOut(
        id=sub.id,
        kind=sub.kind,
        target=sub.target,
        events=list(sub.events),
        project_id=sub.project_id,
        created_at=sub.created_at,
    )


def delivery_out(row: Delivery) -> DeliveryOut:
    """The API shape of a delivery."""
    return DeliveryOut(
        id=row.id,
        event=row.event,
        state=row.state,
        attempts=row.attempts,
        status_code=row.status_code,
        error=row.error,
        response_excerpt=row.response_excerpt,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.state == "pending" else None,
    )
