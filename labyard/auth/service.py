"""Users, logins with throttling, browser sessions and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from labyard.auth.models import ApiToken, LoginFailure, User, WebSession
from labyard.auth.passwords import check_password_rules, hash_password, verify_password
from labyard.config import Settings
from labyard.db import utcnow
from labyard.db.engine import write_beside
from labyard.db.unique import save_unique
from labyard.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Throttled,
    Unauthenticated,
)
from labyard.hooks import HookPoint

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TOKEN_PREFIX = "lya_"
BAD_LOGIN = "Unknown username or wrong password."
# What a new user gets from the domains above auth (projects: a default project they own).
UserCreated = Callable[[Session, User], None]
USER_CREATED: HookPoint[UserCreated] = HookPoint("auth.user_created")


def _hash_token(token: str) -> str:
    # surrogatepass: a JSON body's lone surrogate ("\ud800") hashes to nothing known
    return hashlib.sha256(token.encode(errors="surrogatepass")).hexdigest()


# ---------------------------------------------------------------- users


def create_user(db: Session, *, username: str, password: str, is_admin: bool = False) -> User:
    """Create a user; USER_CREATED (projects, wired in create_app) gives them a default project."""
    on_created = USER_CREATED.handlers()  # before writing: an unwired call changes nothing
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "Username: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            field="username",
        )
    check_password_rules(password)
    taken = Conflict(f"User {username!r} already exists.", field="username")
    if db.scalar(select(User.id).where(User.username == username)) is not None:
        raise taken
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
    save_unique(db, "uq_users_username", taken, lambda: db.add(user))
    for hook in on_created:
        hook(db, user)
    return user


def get_user_by_name(db: Session, username: str) -> User:
    """The user called `username`, or NotFound."""
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"No user {username!r}.")
    return user


def get_user(db: Session, user_id: int) -> User:
    """The user with this id, or NotFound."""
    user = db.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def list_users(db: Session) -> list[User]:
    """Every user, by name."""
    return list(db.scalars(select(User).order_by(User.username)))


def set_password(db: Session, user: User, password: str) -> None:
    """Replace a user's password and end their sessions and tokens."""
    check_password_rules(password)
    user.password_hash = hash_password(password)
    revoke_all_credentials(db, user)


def change_own_password(
    db: Session, user: User, *, current_password: str, new_password: str
) -> None:
    """Change `user`'s password after checking the current one; every session and token of
    theirs ends (the caller starts a fresh one where it needs to)."""
    if not verify_password(user.password_hash, current_password):
        raise InvalidInput("The current password is wrong.", field="current_password")
    set_password(db, user, new_password)


def update_user(
    db: Session,
    admin: User,
    user_id: int,
    *,
    password: str | None = None,
    is_active: bool | None = None,
    is_admin: bool | None = None,
) -> User:
    """Reset a password, (de)activate, or change admin rights, as `admin`; nobody may
    deactivate or demote themselves (the last admin could lock everyone out)."""
    user = get_user(db, user_id)
    if user.id == admin.id and (is_active is False or is_admin is False):
        raise PermissionDenied("You cannot deactivate or demote yourself.")
    if password is not None:
        set_password(db, user, password)
    if is_active is not None:
        set_active(db, user, is_active)
    if is_admin is not None:
        user.is_admin = is_admin
    return user


def set_active(db: Session, user: User, active: bool) -> None:
    """Activate or deactivate a user; deactivation ends their sessions and tokens."""
    user.is_active = active
    if not active:
        revoke_all_credentials(db, user)


def revoke_all_credentials(db: Session, user: User) -> None:
    """Revoke every session and token of `user`."""
    for row in db.scalars(select(WebSession).where(WebSession.user_id == user.id)):
        row.revoked = True
    for token in db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)):
        token.revoked = True


# ---------------------------------------------------------------- logins and throttling


def _throttle_keys(username: str, address: str | None) -> list[tuple[str, str]]:
    """(key, kind) of the counters a login attempt touches: the account everywhere (it only
    delays), the account from this address and the address alone (those refuse)."""
    name = username.lower()[:64]
    keys = [(f"user:{name}", "account")]
    if address:
        keys += [(f"pair:{name}|{address}", "pair"), (f"addr:{address}", "address")]
    return keys


def _live_count(db: Session, settings: Settings, key: str) -> tuple[int, datetime]:
    """Failures counted under `key` in the current window, and when the window started."""
    row = db.get(LoginFailure, key)
    if row is None or utcnow() - row.window_start > timedelta(
        seconds=settings.login_window_seconds
    ):
        return 0, utcnow()
    return row.count, row.window_start


def _check_throttle(db: Session, settings: Settings, keys: list[tuple[str, str]]) -> None:
    """Throttled when this account from this address, or this address, failed too often.
    Never for the account alone: failures from elsewhere must not lock its owner out."""
    limits = {
        "pair": settings.login_max_failures,
        "address": settings.login_max_failures_per_address,
    }
    for key, kind in keys:
        if kind not in limits:
            continue
        count, window_start = _live_count(db, settings, key)
        if count >= limits[kind]:
            window = timedelta(seconds=settings.login_window_seconds)
            retry = int((window_start + window - utcnow()).total_seconds()) + 1
            where = "this account from your address" if kind == "pair" else "your address"
            raise Throttled(
                f"Too many failed logins for {where}. Try again in {retry} seconds.",
                retry_after=retry,
            )


def login_delay(db: Session, settings: Settings, *, username: str, address: str | None) -> float:
    """Seconds a login attempt on `username` waits before its password is checked: the
    account-wide delay once the account failed `login_max_failures` times in the window from
    all addresses together (it slows guessing, never refuses), else 0. An attempt that will be
    refused anyway (its address is throttled) does not wait."""
    keys = _throttle_keys(username, address)
    try:
        _check_throttle(db, settings, keys)
    except Throttled:
        return 0.0
    count, _start = _live_count(db, settings, keys[0][0])
    return settings.login_account_delay_seconds if count >= settings.login_max_failures else 0.0


def _record_failure(db: Session, settings: Settings, keys: list[tuple[str, str]]) -> None:
    now = utcnow()
    window = timedelta(seconds=settings.login_window_seconds)
    for key, _kind in keys:
        row = db.get(LoginFailure, key)
        if row is None:
            db.add(LoginFailure(key=key, count=1, window_start=now))
        elif now - row.window_start > window:
            row.count, row.window_start = 1, now
        else:
            row.count += 1


def authenticate(
    db: Session, settings: Settings, *, username: str, password: str, address: str | None
) -> User:
    """The active user with these credentials; the same error whatever was wrong.

    Raises Throttled when this account from this address, or this address, failed too often
    in the window; the account alone never refuses (see login_delay). The failure is recorded
    in the caller's transaction, which must commit even on error.
    """
    keys = _throttle_keys(username, address)
    _check_throttle(db, settings, keys)
    user = db.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        _record_failure(db, settings, keys)
        raise Unauthenticated(BAD_LOGIN)
    pair = [key for key, kind in keys if kind == "pair"]
    if pair:
        db.execute(delete(LoginFailure).where(LoginFailure.key.in_(pair)))
    return user


# ---------------------------------------------------------------- browser sessions


def create_session(db: Session, settings: Settings, user: User) -> WebSession:
    """Start a fresh browser session (a new random id and CSRF token)."""
    row = WebSession(
        id=secrets.token_urlsafe(32),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=utcnow() + timedelta(hours=settings.session_hours),
    )
    db.add(row)
    db.flush()
    return row


def get_live_session(db: Session, session_id: str) -> WebSession | None:
    """The session if it exists, is not revoked or expired, and its user is active."""
    row = db.get(WebSession, session_id)
    if row is None or row.revoked or row.expires_at <= utcnow() or not row.user.is_active:
        return None
    return row


def revoke_session(db: Session, session_id: str) -> None:
    """End a browser session on the server."""
    row = db.get(WebSession, session_id)
    if row is not None:
        row.revoked = True


# ---------------------------------------------------------------- API tokens


@dataclass(frozen=True)
class IssuedTokens:
    """An OAuth2 token response."""

    access_token: str
    refresh_token: str
    expires_in: int


def _new_token(
    db: Session, user: User, *, kind: str, expires_at: datetime | None, name: str = ""
) -> tuple[str, ApiToken]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=_hash_token(token),
        prefix=token[: len(TOKEN_PREFIX) + 6],
        expires_at=expires_at,
    )
    db.add(row)
    db.flush()
    return token, row


def issue_oauth_tokens(db: Session, settings: Settings, user: User) -> IssuedTokens:
    """An access token and a refresh token for `user`."""
    now = utcnow()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    grant = f"grant:{secrets.token_hex(8)}"  # the pair's name: a revoked refresh ends both
    access, _ = _new_token(db, user, kind="access", expires_at=now + lifetime, name=grant)
    refresh, _ = _new_token(
        db,
        user,
        kind="refresh",
        expires_at=now + timedelta(days=settings.refresh_token_days),
        name=grant,
    )
    return IssuedTokens(access, refresh, int(lifetime.total_seconds()))


def _live_token(db: Session, token: str, kinds: tuple[str, ...]) -> ApiToken | None:
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(token)))
    if row is None or row.revoked or row.kind not in kinds or not row.user.is_active:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return row


def refresh_oauth_tokens(db: Session, settings: Settings, refresh_token: str) -> IssuedTokens:
    """Trade a refresh token for new tokens; the old refresh token is revoked (rotation)."""
    row = _live_token(db, refresh_token, ("refresh",))
    if row is None:
        raise Unauthenticated("The refresh token is invalid or expired.")
    row.revoked = True
    return issue_oauth_tokens(db, settings, row.user)


def revoke_oauth_token(db: Session, token: str) -> None:
    """End an OAuth2 access or refresh token (RFC 7009); a refresh token's access token
    of the same grant ends with it. Unknown, ended and personal tokens are left alone
    (personal tokens are ended from Labyard's settings page)."""
    row = _live_token(db, token, ("access", "refresh")) if token else None
    if row is None:
        return
    row.revoked = True
    if row.kind == "refresh" and row.name:
        db.execute(
            update(ApiToken)
            .where(ApiToken.user_id == row.user_id, ApiToken.name == row.name)
            .where(ApiToken.kind == "access")
            .values(revoked=True)
        )


def live_token(db: Session, token: str) -> ApiToken | None:
    """The live access or personal token row for a bearer token, or None (reads only)."""
    return _live_token(db, token, ("access", "personal"))


def token_use_is_stale(row: ApiToken) -> bool:
    """True when the token's last-use time is over a minute old (worth writing again)."""
    return row.last_used_at is None or utcnow() - row.last_used_at > timedelta(minutes=1)


def mark_token_used(row: ApiToken) -> None:
    """Record a token's use in the caller's (writing) transaction."""
    row.last_used_at = utcnow()


def note_token_use(db: Session, token_id: int) -> None:
    """Record that a token was used, in a short transaction beside `db`; best effort.

    Kept apart from the request's read session so a read-only request never writes, and a
    busy database costs the timestamp, never the request.
    """
    try:
        with write_beside(db) as writer:
            writer.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow())
            )
    except OperationalError:
        pass


def create_personal_token(db: Session, user: User, *, name: str) -> tuple[str, ApiToken]:
    """A named personal access token; the token text is shown once and stored hashed."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("Token name: 1-100 characters.", field="name")
    return _new_token(db, user, kind="personal", expires_at=None, name=name)


def list_personal_tokens(db: Session, user: User) -> list[ApiToken]:
    """The user's personal access tokens that are not revoked, newest first."""
    query = select(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.kind == "personal", ApiToken.revoked.is_(False)
    )
    return list(db.scalars(query.order_by(ApiToken.id.desc())))


def revoke_personal_token(db: Session, user: User, token_id: int) -> None:
    """Revoke one of the user's personal access tokens."""
    row = db.get(ApiToken, token_id)
    if row is None or row.user_id != user.id or row.kind != "personal" or row.revoked:
        raise NotFound("No such token.")
    row.revoked = True
