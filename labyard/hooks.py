"""Hook points: how a lower domain asks a question that only a higher one can answer.

Domains depend one way (auth below projects below datasets and flavors, below jobs, below
labs and tensorboard). When a lower domain needs an answer from a higher one (may this
project be deleted? which labs exist?), it declares a `HookPoint`, and `labyard.app.wire_hooks`
connects the higher domain's function to it. Nothing connects on import: a hook point that
nobody wired refuses to answer instead of silently skipping a check.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

F = TypeVar("F")


# Every hook point, so a test can prove that importing a module connects nothing.
ALL_POINTS: list[HookPoint[Any]] = []


class HooksNotWired(RuntimeError):
    """A hook point was used before `labyard.app.wire_hooks` connected it."""


class HookPoint(Generic[F]):
    """Functions a higher domain connects for a lower one (in `labyard.app.wire_hooks`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[F] = []
        ALL_POINTS.append(self)

    def connect(self, fn: F) -> None:
        """Add `fn` (once: wiring twice, as every test app does, changes nothing)."""
        if fn not in self._handlers:
            self._handlers.append(fn)

    def disconnect(self, fn: F) -> None:
        """Remove `fn` if it was connected."""
        if fn in self._handlers:
            self._handlers.remove(fn)

    @property
    def wired(self) -> bool:
        """Whether anything is connected."""
        return bool(self._handlers)

    def handlers(self) -> list[F]:
        """The connected functions; HooksNotWired when there are none."""
        if not self._handlers:
            raise HooksNotWired(
                f"Hook {self.name!r} is not wired: call labyard.app.wire_hooks() "
                "(create_app does) before using this service."
            )
        return list(self._handlers)
