"""Request bodies of the DeepHealth API, checked as DeepHealth's serializers check them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _as_text(value: object) -> object:
    """DRF's CharField: numbers become strings; null and booleans stay (and are refused)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_as_text)]


class UserPermission(BaseModel):
    """One `users` item: a username and its permission."""

    model_config = ConfigDict(extra="ignore")

    username: str = Field(max_length=64)
    permission: str = Field(max_length=8)


class ProjectBody(BaseModel):
    """POST and PUT /projects."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    task_id: int
    users: object  # checked by service.check_users, with DeepHealth's messages


class PropertyValue(BaseModel):
    """One /train `properties` item."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(max_length=50)
    value: Text = Field(max_length=10_000)


class TrainBody(BaseModel):
    """POST /train."""

    model_config = ConfigDict(extra="ignore")

    project_id: int
    dataset_id: int
    weights_id: int
    properties: list[PropertyValue] = Field(max_length=100)
    task_manager: Literal["CELERY", "STREAMFLOW"] = "CELERY"


class ProcessBody(BaseModel):
    """POST /stopProcess."""

    model_config = ConfigDict(extra="ignore")

    process_id: str = Field(max_length=100)


class PasswordChangeBody(BaseModel):
    """PUT /auth/change-password/."""

    model_config = ConfigDict(extra="ignore")

    old_password: str = Field(max_length=1000)
    new_password1: str = Field(max_length=1000)
    new_password2: str = Field(max_length=1000)


class InferenceBody(BaseModel):
    """POST /inference."""

    model_config = ConfigDict(extra="ignore")

    modelweights_id: int
    dataset_id: int
    project_id: int
    task_manager: Literal["CELERY", "STREAMFLOW"] = "CELERY"


class ProfileBody(BaseModel):
    """PUT /auth/user/ (DRF's field limits; the username cannot change here)."""

    model_config = ConfigDict(extra="ignore")

    username: str | None = Field(default=None, max_length=150)
    email: str = Field(default="", max_length=254)
    first_name: str = Field(default="", max_length=150)
    last_name: str = Field(default="", max_length=150)


class SingleInferenceBody(BaseModel):
    """POST /inferenceSingle: one image as a data URL (`image_data`) or a URL (`image_url`)."""

    model_config = ConfigDict(extra="ignore")

    modelweights_id: int
    project_id: int
    image_data: str | None = Field(default=None, max_length=16 * 1024 * 1024)
    image_url: str | None = Field(default=None, max_length=2000)
    task_manager: Literal["CELERY", "STREAMFLOW"] = "CELERY"
