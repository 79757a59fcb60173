"""Domain errors raised by services; labyard/web/errors.py maps them to HTTP in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises for the user to see."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """The thing does not exist, or the user may not know that it does."""

    status_code = 404


class PermissionDenied(DomainError):
    """The user can see the thing but may not do this to it."""

    status_code = 403


class Unauthenticated(DomainError):
    """No valid credentials came with the request."""

    status_code = 401


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate name, a busy resource)."""

    status_code = 409


class InvalidInput(DomainError):
    """A value the user gave is wrong; `field` names it when there is one."""

    status_code = 422


class MalformedRequest(DomainError):
    """The request itself is broken (e.g. a multipart body that does not parse)."""

    status_code = 400


class TooLarge(DomainError):
    """A size limit was exceeded."""

    status_code = 413


class Throttled(DomainError):
    """Too many attempts; try again later."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
