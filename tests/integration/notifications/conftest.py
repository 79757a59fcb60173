"""Fixtures of the notifications tests: a real HTTP receiver and a real SMTP sink on
127.0.0.1 (threads), settings that let deliveries reach them, and a loop that runs the
delivery worker's step until something holds (a safety deadline, not a timed assertion)."""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.notifications.delivery import deliver_due
from labyard.notifications.models import Delivery, Subscription
from tests.factories import WebClient, access_token_for, auth, make_users_fast


@dataclass
class Hit:
    """One request the receiver got."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server that records every request and answers with `answers` in turn
    (then 200); `(302, "/elsewhere")` answers a redirect."""

    port: int = 0
    hits: list[Hit] = field(default_factory=list)
    answers: list[int | tuple[int, str]] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        """The receiver's URL for `path`."""
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.hits.append(Hit(time.monotonic(), self.path, dict(self.headers), body))
            self._answer()

        do_GET = do_POST  # noqa: N815 - a followed redirect would arrive as GET

        def _answer(self) -> None:
            answer = receiver.answers.pop(0) if receiver.answers else 200
            code, location = answer if isinstance(answer, tuple) else (answer, "")
            self.send_response(code)
            if location:
                self.send_header("Location", receiver.url(location))
            payload = b"x" * 5000 if code == 200 else b"receiver says no"
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A live receiver on 127.0.0.1."""
    made = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(made))
    made.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Enough of RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def _say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        sink: list[dict[str, Any]] = self.server.messages  # type: ignore[attr-defined]
        self._say("220 sink ESMTP")
        envelope: dict[str, Any] = {"rcpt": []}
        while line := self.rfile.readline():
            verb = line.decode("ascii", "replace").strip()
            upper = verb.upper()
            if upper.startswith("EHLO"):
                self._say("250-sink")
                self._say("250 8BITMIME")
            elif upper.startswith("MAIL FROM:"):
                envelope = {"from": verb[10:].strip(), "rcpt": []}
                self._say("250 OK")
            elif upper.startswith("RCPT TO:"):
                envelope["rcpt"].append(verb[8:].strip())
                self._say("250 OK")
            elif upper == "DATA":
                self._say("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                sink.append({**envelope, "data": bytes(data)})
                self._say("250 OK queued")
            elif upper == "QUIT":
                self._say("221 Bye")
                return
            else:  # HELO, RSET, NOOP
                self._say("250 OK")


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A live SMTP sink on 127.0.0.1: (port, the messages it accepted)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], server.messages  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture
def notify_settings(settings: Settings) -> Settings:
    """The test's settings with private addresses allowed (the receiver is on loopback)
    and retries quick."""
    settings.webhook_allow_private = True
    settings.webhook_retry_base_seconds = 0.4
    settings.webhook_timeout_seconds = 5
    return settings


@dataclass
class People:
    """Users with API clients (bearer tokens)."""

    app: FastAPI
    database: Database
    users: dict[str, User]
    clients: list[WebClient] = field(default_factory=list)

    def api(self, name: str) -> WebClient:
        """A client with `name`'s bearer token."""
        client = WebClient(self.app)
        token = access_token_for(self.app, self.database, self.users[name])
        client.headers.update(auth(token))
        self.clients.append(client)
        return client


@pytest.fixture
def people(app: FastAPI, database: Database) -> Iterator[People]:
    """alice and bob, each with a default project."""
    made = People(app, database, make_users_fast(database, "alice", "bob"))
    yield made
    for client in made.clients:
        client.close()


def deliver_until(
    settings: Settings, database: Database, done: Callable[[], bool], timeout: float = 30
) -> None:
    """Run the delivery worker's step until `done()` holds."""
    deadline = time.monotonic() + timeout
    while not done():
        deliver_due(settings, database)
        assert time.monotonic() < deadline, "the deliveries did not get there"
        time.sleep(0.02)


def deliveries_of(database: Database, subscription_id: int) -> list[Delivery]:
    """The subscription's deliveries, oldest first."""
    with database.read_session() as db:
        rows = db.query(Delivery).filter_by(subscription_id=subscription_id)
        found = list(rows.order_by(Delivery.id))
        db.expunge_all()  # readable after the read session's rollback
        return found


def subscription_count(database: Database) -> int:
    """How many subscriptions exist."""
    with database.read_session() as db:
        return db.query(Subscription).count()
