"""Work that must wait until a transaction committed (start a worker on a new row)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_PENDING = "labyard_on_commit"
log = logging.getLogger(__name__)


def on_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` right after `session`'s current transaction commits; drop it on rollback.

    A request's session commits after its endpoint returned (labyard.web.deps.get_db), so
    routers and services queue here instead of committing early themselves. An action that
    fails is logged: what was committed stays committed and is answered as such.
    """
    pending: list[Callable[[], None]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _run_pending)
        event.listen(session, "after_soft_rollback", _drop_pending)
    pending.append(action)


def _run_pending(session: Session) -> None:
    pending = session.info.get(_PENDING, [])
    actions, pending[:] = list(pending), []
    for action in actions:
        try:
            action()
        except Exception:  # noqa: BLE001 - the commit stands; a failed follow-up is logged
            log.exception("an action after commit failed")


def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the transaction, not a savepoint in it
        session.info.get(_PENDING, []).clear()
