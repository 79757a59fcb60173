"""Sending one delivery: a signed webhook POST to a vetted address, or an e-mail over SMTP.

A webhook request carries the JSON body and
`X-Labyard-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the secret>`,
`X-Labyard-Timestamp` (Unix seconds, so a receiver can refuse replays), `X-Labyard-Event` and
`X-Labyard-Delivery` (the same id on every attempt of one delivery). It connects only to an
address that `guard.resolve` vetted at this very attempt, never follows a redirect, times out,
and keeps only a short excerpt of the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage

from labyard.config import Settings
from labyard.notifications.guard import Refused, Target, resolve, target_of

EXCERPT_BYTES = 300
RETRY_CODES = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Outcome:
    """How one attempt went; `retry` says whether a later attempt may go better."""

    ok: bool
    retry: bool = False
    refused: bool = False
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Labyard-Signature` value of `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to one vetted address, with the URL's host name in `Host`."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to one vetted address; the certificate is checked against the URL's host."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = address
        self.tls = ssl.create_default_context()

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() else " " for c in text)[:EXCERPT_BYTES]


def _judge(status: int, location: str | None, excerpt: str) -> Outcome:
    if 200 <= status < 300:
        return Outcome(ok=True, status_code=status, excerpt=excerpt)
    if 300 <= status < 400:
        where = _text((location or "").encode())[:200]
        error = f"answered {status} (a redirect to {where!r}); redirects are not followed"
        return Outcome(ok=False, status_code=status, error=error, excerpt=excerpt)
    retry = status >= 500 or status in RETRY_CODES
    return Outcome(False, retry, status_code=status, error=f"answered {status}", excerpt=excerpt)


def post_webhook(
    settings: Settings, *, url: str, secret: str, delivery_id: int, event: str, body: bytes
) -> Outcome:
    """One signed POST of `body` to `url` (see the module's docstring)."""
    target = target_of(url)
    try:
        addresses = resolve(target.host, target.port, allow_private=settings.webhook_allow_private)
    except Refused as exc:
        return Outcome(ok=False, refused=True, error=str(exc))
    except OSError as exc:
        return Outcome(ok=False, retry=True, error=str(exc)[:300])
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Labyard-Webhook/1",
        "X-Labyard-Event": event,
        "X-Labyard-Delivery": str(delivery_id),
        "X-Labyard-Timestamp": stamp,
        "X-Labyard-Signature": signature(secret, stamp, body),
    }
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = kind(target, addresses[0], settings.webhook_timeout_seconds)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        excerpt = _text(response.read(EXCERPT_BYTES))
        return _judge(response.status, response.getheader("Location"), excerpt)
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(ok=False, retry=True, error=f"{type(exc).__name__}: {exc}"[:300])
    finally:
        conn.close()


def send_email(settings: Settings, *, to: str, subject: str, text: str) -> Outcome:
    """One e-mail through the configured SMTP server (smtplib, STARTTLS when set)."""
    if not (settings.smtp_host and settings.smtp_from):
        return Outcome(ok=False, refused=True, error="e-mail is not configured on this server")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = settings.smtp_from, to, subject
    message.set_content(text)
    timeout = settings.webhook_timeout_seconds
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error
        said = said if isinstance(said, bytes) else str(said).encode()
        error = f"SMTP {exc.smtp_code}: {_text(said)}"[:300]
        return Outcome(ok=False, retry=exc.smtp_code < 500, status_code=exc.smtp_code, error=error)
    except (OSError, smtplib.SMTPException) as exc:
        return Outcome(ok=False, retry=True, error=f"{type(exc).__name__}: {exc}"[:300])
    return Outcome(ok=True)
