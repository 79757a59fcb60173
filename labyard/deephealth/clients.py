"""DeepHealth clients: the `client_id`s allowed to log in at `/backend/auth/token/`, from the
setting LABYARD_DEEPHEALTH_CLIENT_IDS and from the table an administrator fills on the admin
page (or its API twin). Removing a client refuses its next logins (`401 invalid_client`)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db.unique import save_unique
from labyard.deephealth.models import DeepHealthClient
from labyard.errors import Conflict, InvalidInput, NotFound, PermissionDenied

# OAuth2 client ids are printable ASCII without spaces (RFC 6749, VSCHAR); kept to URL-safe
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")


def setting_ids(settings: Settings) -> frozenset[str]:
    """The ids the setting registers."""
    return frozenset(x.strip() for x in settings.deephealth_client_ids.split(",") if x.strip())


def is_registered(db: Session, settings: Settings, client_id: str) -> bool:
    """Whether `client_id` may log in: the setting's, or a row of the table."""
    if not client_id:
        return False
    if client_id in setting_ids(settings):
        return True
    found = select(DeepHealthClient.id).where(DeepHealthClient.client_id == client_id)
    return db.scalar(found) is not None


def _require_admin(user: User) -> None:
    if not user.is_admin:
        raise PermissionDenied("Only administrators may manage DeepHealth clients.")


def list_clients(db: Session, user: User) -> list[DeepHealthClient]:
    """The registered clients, oldest first (admin)."""
    _require_admin(user)
    return list(db.scalars(select(DeepHealthClient).order_by(DeepHealthClient.id)))


def add_client(
    db: Session, settings: Settings, user: User, *, client_id: str, name: str = ""
) -> DeepHealthClient:
    """Register a client id (admin); refused when malformed or already registered."""
    _require_admin(user)
    client_id, name = client_id.strip(), name.strip()
    if not CLIENT_ID_RE.match(client_id):
        raise InvalidInput(
            "A client id is 1 to 100 letters, digits, '.', '_', '~' or '-'.", field="client_id"
        )
    if len(name) > 100:
        raise InvalidInput("The name is longer than 100 characters.", field="name")
    if client_id in setting_ids(settings):
        raise Conflict(
            "LABYARD_DEEPHEALTH_CLIENT_IDS already registers this client id.", field="client_id"
        )
    taken = Conflict("This client id is already registered.", field="client_id")
    if db.scalar(select(DeepHealthClient.id).where(DeepHealthClient.client_id == client_id)):
        raise taken
    row = DeepHealthClient(client_id=client_id, name=name, created_by_id=user.id)
    save_unique(db, "uq_deephealth_clients_client_id", taken, lambda: db.add(row))
    return row


def remove_client(db: Session, settings: Settings, user: User, client_id: str) -> None:
    """Unregister a client id (admin): its next logins get `401 invalid_client`."""
    _require_admin(user)
    row = db.scalar(select(DeepHealthClient).where(DeepHealthClient.client_id == client_id))
    if row is None:
        if client_id in setting_ids(settings):
            raise Conflict(
                "LABYARD_DEEPHEALTH_CLIENT_IDS registers this client id; change the setting.",
                field="client_id",
            )
        raise NotFound("No DeepHealth client with this id.", field="client_id")
    db.delete(row)
    db.flush()
