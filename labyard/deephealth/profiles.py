"""DeepHealth's view of a user: Labyard's username with the e-mail and names its profile page
sets (`PUT /auth/user/`, kept in deephealth_profiles; Labyard's users carry none)."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from labyard.auth.models import User
from labyard.deephealth.errors import DeepHealthError
from labyard.deephealth.models import DeepHealthProfile
from labyard.deephealth.schemas import ProfileBody

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def profiles_of(db: Session, user_ids: list[int]) -> dict[int, DeepHealthProfile]:
    """The profiles of these users that have one (one query)."""
    rows = db.scalars(select(DeepHealthProfile).where(DeepHealthProfile.user_id.in_(user_ids)))
    return {row.user_id: row for row in rows}


def user_json(user: User, profile: DeepHealthProfile | None) -> dict[str, object]:
    """A user as DeepHealth's auth app shows one."""
    return {
        "id": user.id,
        "username": user.username,
        "email": profile.email if profile else "",
        "first_name": profile.first_name if profile else "",
        "last_name": profile.last_name if profile else "",
    }


def users_json(db: Session, users: list[User]) -> list[dict[str, object]]:
    """Several users with their profiles."""
    found = profiles_of(db, [u.id for u in users])
    return [user_json(u, found.get(u.id)) for u in users]


def update_profile(db: Session, user: User, body: ProfileBody) -> dict[str, object]:
    """Set the caller's e-mail and names (DeepHealth's messages); the username stays."""
    if body.username is not None and body.username != user.username:
        message = "Labyard usernames cannot be changed."
        raise DeepHealthError(400, {"username": [message]})
    if body.email and not EMAIL_RE.match(body.email):
        raise DeepHealthError(400, {"email": ["Enter a valid email address."]})
    profile = db.get(DeepHealthProfile, user.id)
    if profile is None:
        profile = DeepHealthProfile(user_id=user.id)
        db.add(profile)
    profile.email, profile.first_name, profile.last_name = (
        body.email,
        body.first_name,
        body.last_name,
    )
    db.flush()
    shown = user_json(user, profile)
    del shown["id"]
    return shown
