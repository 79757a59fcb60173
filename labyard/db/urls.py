"""Database URLs fit to print or log: the one place a URL's password is masked."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"
# libpq also takes a password in the query string: ...?password=...
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def shown_url(url: str) -> str:
    """`url` with its password masked (in the authority and the query); an unparsable URL is
    shown as its scheme only, since where a password sits in it cannot be known."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        scheme, found, _ = url.partition("://")
        return f"{scheme}://{MASK} (unparsable URL)" if found else "(unparsable URL)"
    secret_keys = [key for key in parsed.query if key.lower() in _SECRET_QUERY_KEYS]
    if secret_keys:
        parsed = parsed.update_query_dict(dict.fromkeys(secret_keys, MASK))
    shown = parsed.render_as_string(hide_password=True)
    return shown.replace(f"={quote(MASK)}", f"={MASK}")
