"""JSON shapes of the auth API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class UserOut(BaseModel):
    """A user as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    is_admin: bool
    is_active: bool
    default_project_id: int | None
    created_at: datetime


class UserCreate(BaseModel):
    """Create a user (admin)."""

    username: str
    password: str
    is_admin: bool = False


class UserUpdate(BaseModel):
    """Change a user (admin): any field left out stays."""

    password: str | None = None
    is_active: bool | None = None
    is_admin: bool | None = None


class PasswordChange(BaseModel):
    """Change my own password: the current one proves it is me."""

    current_password: str
    new_password: str


class TokenResponse(BaseModel):
    """OAuth2 token response (RFC 6749 section 5.1)."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    scope: str = ""


class PersonalTokenCreate(BaseModel):
    """Name of a new personal access token."""

    name: str


class PersonalTokenOut(BaseModel):
    """A personal access token, without its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class PersonalTokenCreated(PersonalTokenOut):
    """A just-created personal access token: the only time its text is shown."""

    token: str
