"""The notifications JSON API: my subscriptions and my projects' (OWN), their delivery logs,
a test delivery. The settings page (labyard.notifications.pages) calls the same services."""

from __future__ import annotations

from fastapi import APIRouter, Response

from labyard.notifications import service
from labyard.notifications.schemas import (
    DeliveryOut,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
    delivery_out,
    subscription_out,
)
from labyard.web.deps import CurrentUser, SessionDep, SettingsDep

router = APIRouter(prefix="/api/v1", tags=["notifications"])


@router.get("/notifications", response_model=list[SubscriptionOut])
def list_subscriptions(user: CurrentUser, db: SessionDep) -> list[SubscriptionOut]:
    """My own subscriptions and those of the projects I own."""
    return [subscription_out(s) for s in service.list_subscriptions(db, user)]


@router.post("/notifications", response_model=SubscriptionCreated, status_code=201)
def create_subscription(
    body: SubscriptionIn, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> SubscriptionCreated:
    """Subscribe a webhook or an e-mail address to events; a webhook's signing `secret` is
    in this answer only. 422: a bad URL or address (`field` names it); 403/404: the project."""
    sub, secret = service.create_subscription(
        db,
        settings,
        user,
        kind=body.kind,
        events=list(body.events),
        url=body.url,
        email=body.email,
        project_id=body.project_id,
    )
    return SubscriptionCreated(**subscription_out(sub).model_dump(), secret=secret)


@router.get("/notifications/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(subscription_id: int, user: CurrentUser, db: SessionDep) -> SubscriptionOut:
    """One subscription."""
    return subscription_out(service.get_subscription(db, user, subscription_id))


@router.delete("/notifications/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: int, user: CurrentUser, db: SessionDep) -> Response:
    """Delete a subscription (and its log; what is pending is not sent)."""
    service.delete_subscription(db, user, subscription_id)
    return Response(status_code=204)


@router.get("/notifications/{subscription_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    subscription_id: int, user: CurrentUser, db: SessionDep, settings: SettingsDep
) -> list[DeliveryOut]:
    """The subscription's newest deliveries (pending ones included), newest first."""
    sub = service.get_subscription(db, user, subscription_id)
    rows = service.deliveries(db, [sub.id], settings.notification_log_size)[sub.id]
    return [delivery_out(r) for r in rows]


@router.post("/notifications/{subscription_id}/test", response_model=DeliveryOut, status_code=202)
def send_test(subscription_id: int, user: CurrentUser, db: SessionDep) -> DeliveryOut:
    """Queue a `ping` delivery (sent within seconds; see its deliveries for the outcome)."""
    return delivery_out(service.send_test(db, user, subscription_id))
