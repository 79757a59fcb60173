"""What a subscription may point at: a webhook URL's shape (when it is saved) and the
addresses its host resolves to (at every delivery, so DNS cannot be changed in between),
and an e-mail address's shape."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from labyard.errors import InvalidInput

MAX_URL = 2048
MAX_EMAIL = 254
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


class Refused(Exception):
    """A delivery that must not be made (a private address, no SMTP server)."""


@dataclass(frozen=True)
class Target:
    """A checked webhook URL in parts."""

    scheme: str
    host: str
    port: int
    path: str  # with the query


def check_url(url: str) -> str:
    """The URL if it may be a webhook (http or https, a host, no credentials, short);
    else InvalidInput on the field `url`."""
    if len(url) > MAX_URL:
        raise InvalidInput(f"The URL is longer than {MAX_URL} characters.", field="url")
    if _UNSAFE.search(url):
        raise InvalidInput("The URL must not hold spaces or control characters.", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("The URL does not parse.", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("The URL must start with http:// or https://.", field="url")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput("The URL must not carry a user name or password.", field="url")
    if not parts.hostname:
        raise InvalidInput("The URL has no host.", field="url")
    if port == 0:
        raise InvalidInput("The URL's port must be 1 to 65535.", field="url")
    return url


def check_email(address: str) -> str:
    """The address if it looks like one (no header injection); else InvalidInput."""
    address = address.strip()
    if len(address) > MAX_EMAIL or not EMAIL_RE.match(address):
        raise InvalidInput("That is not an e-mail address.", field="email")
    return address


def target_of(url: str) -> Target:
    """The parts of a URL that check_url accepted."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname or "", parts.port or default, path)


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address `host` resolves to now; Refused when one of them is loopback,
    link-local, private or otherwise not public (unless `allow_private`)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        blocked = [a for a in addresses if not _public(a)]
        if blocked:
            raise Refused(
                f"{host} resolves to {', '.join(blocked)}, which is not a public address "
                "(an admin may allow private addresses: LABYARD_WEBHOOK_ALLOW_PRIVATE)"
            )
    return addresses
