"""Login throttling at the request: the client's address (believing `X-Forwarded-For` only
from proxies the settings trust, LABYARD_TRUSTED_PROXIES) and the account-wide delay."""

from __future__ import annotations

import ipaddress
import time

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from labyard.auth import service
from labyard.config import Settings
from labyard.db import Database


def _trusted(settings: Settings, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.trusted_proxy_networks)


def client_address(conn: HTTPConnection, settings: Settings) -> str | None:
    """The address of the client behind this request.

    The TCP peer, unless it is a trusted proxy: then the rightmost `X-Forwarded-For` hop that
    is not a trusted proxy (hops further left were written by the client and prove nothing).
    A header from an untrusted peer is ignored, so a client cannot pick its own address.
    """
    peer = conn.client.host if conn.client else None
    if peer is None or not _trusted(settings, peer):
        return peer
    hops = [
        hop.strip()
        for header in conn.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _trusted(settings, hop):
            return _canonical(hop)
    return _canonical(hops[0]) if hops else peer


def _canonical(hop: str) -> str:
    """An IP address in its one spelling (so `::ffff:1.2.3.4` variants count together);
    anything else as sent, cut short (it still only throttles itself)."""
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return hop[:64]


def pause_for_account(
    database: Database,
    settings: Settings,
    *,
    username: str,
    address: str | None,
    request_db: Session | None = None,
) -> float:
    """Wait the account-wide login delay, if the account is being guessed at; the seconds waited.

    Read in a session of its own, and `request_db`'s transaction (begun by the CSRF check of a
    request with a session cookie; nothing written yet) ends first: the wait holds no lock.
    """
    with database.read_session() as db:
        delay = service.login_delay(db, settings, username=username, address=address)
    if delay > 0:
        if request_db is not None and request_db.in_transaction():
            if request_db.new or request_db.dirty or request_db.deleted:
                raise RuntimeError("pause_for_account must run before the request writes")
            request_db.rollback()
        time.sleep(delay)
    return delay
