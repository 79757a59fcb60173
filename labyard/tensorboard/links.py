"""Capability links to a TensorBoard: `/tensorboard/<id>/~<token>/`.

TensorBoard's page runs in a sandbox without same-origin (see labyard/tensorboard/proxy.py):
its origin is opaque, so the browser sends it no Labyard cookie and it cannot read or use the
viewer's session. Its own requests are authorised by the token in their path instead. A token
names one instance, one user and one browser session (by a hash of the session id, never the id
itself); it expires after `tensorboard_link_minutes`, dies with the session (logout, expiry,
deactivated user), and every request still checks that the user may READ the instance.

Lab sessions frame JupyterLab the same way (labyard/sessions/proxy.py): their tokens are made
with `purpose="session"`, so a token for one kind of page never opens the other.
"""

from __future__ import annotations

import hashlib
import hmac

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User, WebSession
from labyard.config import Settings
from labyard.db import utcnow
from labyard.errors import Unauthenticated
from labyard.tensorboard import process

EXPIRED = "This link has expired or its login ended; reload the page that opened it."


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.resolved_secret_key, salt=f"labyard-{purpose}-link")


def _session_ref(session_id: str) -> str:
    """What a token keeps of a browser session: enough to find it, useless as a cookie."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


def token_for(
    settings: Settings, instance_id: int, web_session: WebSession, *, purpose: str = "tensorboard"
) -> str:
    """A fresh token for this user's browser session to view this instance (or, with
    `purpose="session"`, this lab's session)."""
    payload = [instance_id, web_session.user_id, _session_ref(web_session.id)]
    return str(_serializer(settings, purpose).dumps(payload))


def frame_url(settings: Settings, instance_id: int, web_session: WebSession) -> str:
    """Where the sandboxed TensorBoard page answers for this browser session."""
    return f"{process.path_prefix(instance_id)}/~{token_for(settings, instance_id, web_session)}/"


def user_for_token(
    db: Session, settings: Settings, instance_id: int, token: str, *, purpose: str = "tensorboard"
) -> User:
    """The user a token speaks for; Unauthenticated if it is forged, expired, for another
    instance (or purpose), or its browser session is no longer live."""
    max_age = settings.tensorboard_link_minutes * 60
    try:
        payload = _serializer(settings, purpose).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise Unauthenticated(EXPIRED) from exc
    except BadSignature as exc:
        raise Unauthenticated("This link is not valid.") from exc
    if not (isinstance(payload, list) and len(payload) == 3 and payload[0] == instance_id):
        raise Unauthenticated("This link is not valid.")
    _, user_id, ref = payload
    live = db.scalars(
        select(WebSession).where(
            WebSession.user_id == user_id,
            WebSession.revoked.is_(False),
            WebSession.expires_at > utcnow(),
        )
    )
    for web_session in live:
        if hmac.compare_digest(_session_ref(web_session.id), str(ref)):
            if not web_session.user.is_active:
                break
            return web_session.user
    raise Unauthenticated(EXPIRED)
