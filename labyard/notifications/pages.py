"""The Notifications section of the settings page: subscriptions with their delivery logs,
forms to add a webhook or an e-mail address, delete and "Send a test". Each action calls the
service its `/api/v1/notifications` twin calls (labyard.notifications.router); an htmx
request gets the `notifications` block, which settings.html loads into its own page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.errors import InvalidInput
from labyard.notifications import service
from labyard.notifications.guard import MAX_EMAIL, MAX_URL
from labyard.numbers import ascii_int
from labyard.projects.models import Role
from labyard.projects.service import list_projects
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep
from labyard.web.render import is_htmx, render

router = APIRouter(include_in_schema=False)
PAGE = "notifications.html"


def _context(db: Session, settings: Settings, user: User, **extra: Any) -> dict[str, Any]:
    subs = service.list_subscriptions(db, user)
    projects = list_projects(db, user)
    owned = [p for p, role in projects if role >= Role.OWN]
    names = {p.id: p.name for p, _ in projects}
    return {
        "subscriptions": subs,
        "deliveries": service.deliveries(db, [s.id for s in subs], settings.notification_log_size),
        "owned_projects": owned,
        "project_names": names,
        "event_labels": service.EVENT_LABELS,
        "email_configured": service.email_configured(settings),
        **extra,
    }


def _answer(
    request: Request, db: Session, settings: Settings, user: User, **extra: Any
) -> Response:
    context = _context(db, settings, user, **extra)
    return render(request, PAGE, context, block="notifications" if is_htmx(request) else None)


@router.get("/settings/notifications")
def notifications_page(
    request: Request, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """My notifications (the page, or its block for htmx)."""
    return _answer(request, db, settings, user)


@router.post("/settings/notifications")
def add_subscription(
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    kind: Annotated[str, Form(max_length=16)] = "webhook",
    url: Annotated[str, Form(max_length=MAX_URL)] = "",
    email: Annotated[str, Form(max_length=MAX_EMAIL)] = "",
    events: Annotated[list[str] | None, Form()] = None,
    project_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Add a webhook or an e-mail subscription; a webhook's secret is shown this once."""
    project = ascii_int(project_id) if project_id else None
    if project_id and project is None:
        raise InvalidInput("Choose a project from the list.", field="project_id")
    sub, secret = service.create_subscription(
        db,
        settings,
        user,
        kind=kind,
        events=events or [],
        url=url,
        email=email,
        project_id=project,
    )
    return _answer(request, db, settings, user, new_secret=secret, new_id=sub.id)


@router.post("/settings/notifications/{subscription_id}/delete")
def delete_subscription(
    request: Request, subscription_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Delete a subscription."""
    service.delete_subscription(db, user, subscription_id)
    return _answer(request, db, settings, user)


@router.post("/settings/notifications/{subscription_id}/test")
def send_test(
    request: Request, subscription_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> Response:
    """Queue a test delivery; the log shows how it went (the block polls while pending)."""
    service.send_test(db, user, subscription_id)
    return _answer(request, db, settings, user)
