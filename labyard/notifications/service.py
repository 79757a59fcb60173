"""Subscriptions: make, list, see, delete, test; and their delivery logs.

A personal subscription (no project) is its maker's alone: nobody else, admins included,
sees that it exists. A project's subscriptions are managed by the project's OWNers (and
admins): READ and WRITE members get PermissionDenied, non-members NotFound.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.errors import InvalidInput, NotFound
from labyard.notifications import events as notify_events
from labyard.notifications.guard import check_email, check_url
from labyard.notifications.models import Delivery, Event, Kind, Subscription
from labyard.projects.models import Membership, Role
from labyard.projects.service import require_project

CHOOSABLE = (Event.JOB_FINISHED, Event.JOB_FAILED, Event.SWEEP_FINISHED, Event.SEARCH_FINISHED)
EVENT_LABELS = {
    Event.JOB_FINISHED: "Job finished",
    Event.JOB_FAILED: "Job failed",
    Event.SWEEP_FINISHED: "Sweep finished",
    Event.SEARCH_FINISHED: "Search finished",
}
MAX_SUBSCRIPTIONS = 20  # per person (their own) and per project


def email_configured(settings: Settings) -> bool:
    """Whether this server can send e-mail (an SMTP host and a sender)."""
    return bool(settings.smtp_host and settings.smtp_from)


def _clean_events(chosen: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(chosen))
    unknown = [e for e in wanted if e not in CHOOSABLE]
    if unknown:
        names = ", ".join(CHOOSABLE)
        message = f"Unknown event {unknown[0][:40]!r}; choose from {names}."
        raise InvalidInput(message, field="events")
    if not wanted:
        raise InvalidInput("Choose at least one event.", field="events")
    return wanted


def _target(settings: Settings, kind: str, url: str | None, email: str | None) -> str:
    if kind == Kind.WEBHOOK:
        return check_url((url or "").strip())
    if kind == Kind.EMAIL:
        if not email_configured(settings):
            raise InvalidInput("E-mail is not configured on this server.", field="email")
        return check_email(email or "")
    raise InvalidInput("The kind must be webhook or email.", field="kind")


def create_subscription(
    db: Session,
    settings: Settings,
    user: User,
    *,
    kind: str,
    events: list[str],
    url: str | None = None,
    email: str | None = None,
    project_id: int | None = None,
) -> tuple[Subscription, str]:
    """A new subscription and, for a webhook, its signing secret (shown only this once).
    A project's needs OWN of the project."""
    if project_id is not None:
        require_project(db, user, project_id, Role.OWN)
    target = _target(settings, kind, url, email)
    chosen = _clean_events(events)
    same_scope = (
        Subscription.project_id == project_id
        if project_id is not None
        else (Subscription.project_id.is_(None) & (Subscription.user_id == user.id))
    )
    if (db.scalar(select(func.count()).where(same_scope)) or 0) >= MAX_SUBSCRIPTIONS:
        raise InvalidInput(f"At most {MAX_SUBSCRIPTIONS} subscriptions each.", field=kind)
    secret = secrets.token_hex(32) if kind == Kind.WEBHOOK else ""
    sub = Subscription(
        user_id=user.id,
        project_id=project_id,
        kind=kind,
        target=target,
        secret=secret,
        events=chosen,
    )
    db.add(sub)
    db.flush()
    return sub, secret


def list_subscriptions(db: Session, user: User) -> list[Subscription]:
    """My own subscriptions and those of the projects I own, newest first."""
    owned = select(Membership.project_id).where(
        Membership.user_id == user.id, Membership.role == Role.OWN
    )
    projects = Subscription.project_id.is_not(None)
    if not user.is_admin:
        projects = Subscription.project_id.in_(owned)
    mine = Subscription.project_id.is_(None) & (Subscription.user_id == user.id)
    query = select(Subscription).where(or_(mine, projects)).order_by(Subscription.id.desc())
    return list(db.scalars(query))


def get_subscription(db: Session, user: User, subscription_id: int) -> Subscription:
    """The subscription if `user` may manage it (see the module's docstring)."""
    sub = db.get(Subscription, subscription_id)
    if sub is None or (sub.project_id is None and sub.user_id != user.id):
        raise NotFound("No such subscription.")
    if sub.project_id is not None:
        try:
            require_project(db, user, sub.project_id, Role.OWN)
        except NotFound:
            raise NotFound("No such subscription.") from None
    return sub


def delete_subscription(db: Session, user: User, subscription_id: int) -> None:
    """Delete a subscription and its deliveries (pending ones are not sent)."""
    sub = get_subscription(db, user, subscription_id)
    db.query(Delivery).filter(Delivery.subscription_id == sub.id).delete()
    db.delete(sub)


def send_test(db: Session, user: User, subscription_id: int) -> Delivery:
    """Queue a `ping` delivery to the subscription (whatever events it chose)."""
    sub = get_subscription(db, user, subscription_id)
    (row,) = notify_events.enqueue(db, [sub], Event.PING, {"subscription_id": sub.id})
    db.flush()
    return row


def deliveries(db: Session, subscription_ids: list[int], limit: int) -> dict[int, list[Delivery]]:
    """The newest `limit` deliveries of each subscription, newest first."""
    found: dict[int, list[Delivery]] = {sid: [] for sid in subscription_ids}
    if not subscription_ids:
        return found
    rows = db.scalars(
        select(Delivery)
        .where(Delivery.subscription_id.in_(subscription_ids))
        .order_by(Delivery.id.desc())
    )
    for row in rows:
        if len(found[row.subscription_id]) < limit:
            found[row.subscription_id].append(row)
    return found
