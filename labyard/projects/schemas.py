"""JSON shapes of the projects API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class ProjectCreate(BaseModel):
    """A new project."""

    name: str
    description: str = ""


class ProjectUpdate(BaseModel):
    """Rename or describe a project, or set its jobs' default priority (OWN); fields left
    out stay."""

    name: str | None = None
    description: str | None = None
    default_priority: Literal["low", "normal", "high"] | None = None


class ProjectOut(BaseModel):
    """A project and the caller's role in it."""

    id: int
    name: str
    description: str
    created_at: datetime
    role: Literal["OWN", "WRITE", "READ"]
    default_priority: Literal["low", "normal", "high"] = "normal"


class MemberSet(BaseModel):
    """Add a member or change a role."""

    username: str
    role: Literal["OWN", "WRITE", "READ"]


class MemberOut(BaseModel):
    """A member of a project."""

    user_id: int
    username: str
    role: Literal["OWN", "WRITE", "READ"]
