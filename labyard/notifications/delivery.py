"""The delivery worker: sends the outbox's due deliveries, one attempt each, outside any
transaction, and records how each went.

Each delivery is claimed with a conditional UPDATE (its due time moves past the attempt's
longest duration), so two servers on one database never send the same attempt twice, and a
server that dies mid-attempt leaves the delivery due again later. A failed attempt that may
go better later is retried after `webhook_retry_base_seconds`, doubling each time, up to
`webhook_max_attempts`; then it is failed. Only the newest `notification_log_size`
finished deliveries of a subscription are kept (its log).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from labyard.config import Settings
from labyard.db import Database, utcnow
from labyard.notifications.events import describe
from labyard.notifications.models import Delivery, DeliveryState, Kind, Subscription
from labyard.notifications.senders import Outcome, post_webhook, send_email

log = logging.getLogger(__name__)
BATCH = 50


@dataclass(frozen=True)
class Claimed:
    """What one attempt needs, read in the claiming transaction."""

    delivery_id: int
    event: str
    payload: dict[str, Any]
    kind: str
    target: str
    secret: str


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2 x base, 4 x base..."""
    return timedelta(seconds=settings.webhook_retry_base_seconds * 2 ** (attempts - 1))


def deliver_due(settings: Settings, database: Database, *, now: datetime | None = None) -> int:
    """Make one attempt of every delivery due now (up to BATCH); how many were attempted."""
    now = now or utcnow()
    with database.read_session() as db:
        due = list(
            db.scalars(
                select(Delivery.id)
                .where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now)
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(BATCH)
            )
        )
    done = 0
    for delivery_id in due:
        claimed = _claim(settings, database, delivery_id, now)
        if claimed is None:
            continue
        outcome = attempt(settings, claimed)
        _record(settings, database, delivery_id, outcome)
        done += 1
    return done


def _claim(
    settings: Settings, database: Database, delivery_id: int, now: datetime
) -> Claimed | None:
    lease = timedelta(seconds=settings.webhook_timeout_seconds * 4 + 30)
    with database.session() as db:
        moved = db.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.state == DeliveryState.PENDING,
                Delivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=utcnow() + lease)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return None  # another worker has it
        row = db.execute(
            select(Delivery, Subscription)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(Delivery.id == delivery_id)
        ).one()
        delivery, sub = row
        return Claimed(
            delivery.id, delivery.event, delivery.payload, sub.kind, sub.target, sub.secret
        )


def attempt(settings: Settings, claimed: Claimed) -> Outcome:
    """One attempt to deliver `claimed` (no database work)."""
    base_url = settings.public_url.rstrip("/")
    if claimed.kind == Kind.EMAIL:
        subject, text = describe(claimed.payload, base_url)
        return send_email(settings, to=claimed.target, subject=subject, text=text)
    payload = _with_urls(claimed.payload, base_url)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return post_webhook(
        settings,
        url=claimed.target,
        secret=claimed.secret,
        delivery_id=claimed.delivery_id,
        event=claimed.event,
        body=body,
    )


def _with_urls(payload: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The payload with `url` beside each `path` (when the server knows its public URL)."""
    if not base_url:
        return payload
    out = dict(payload)
    for key, value in payload.items():
        if isinstance(value, dict) and isinstance(value.get("path"), str):
            out[key] = {**value, "url": base_url + value["path"]}
    return out


def _record(settings: Settings, database: Database, delivery_id: int, outcome: Outcome) -> None:
    with database.session() as db:
        delivery = db.get(Delivery, delivery_id)
        if delivery is None:  # its subscription was deleted meanwhile
            return
        now = utcnow()
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.status_code = outcome.status_code
        delivery.error = outcome.error[:500]
        delivery.response_excerpt = outcome.excerpt[:300]
        if outcome.ok:
            delivery.state = DeliveryState.DELIVERED
        elif outcome.refused:
            delivery.state = DeliveryState.REFUSED
        elif outcome.retry and delivery.attempts < settings.webhook_max_attempts:
            delivery.next_attempt_at = now + retry_delay(settings, delivery.attempts)
        else:
            delivery.state = DeliveryState.FAILED
        if delivery.state != DeliveryState.PENDING:
            _prune(db, delivery.subscription_id, settings.notification_log_size)
        if not outcome.ok:
            log.info("delivery %s: %s", delivery_id, outcome.error)


def _prune(db: Session, subscription_id: int, keep: int) -> None:
    """Drop all but the newest `keep` finished deliveries of the subscription."""
    db.flush()
    old = list(
        db.scalars(
            select(Delivery.id)
            .where(
                Delivery.subscription_id == subscription_id,
                Delivery.state != DeliveryState.PENDING,
            )
            .order_by(Delivery.id.desc())
            .offset(keep)
        )
    )
    if old:
        db.query(Delivery).filter(Delivery.id.in_(old)).delete(synchronize_session=False)
