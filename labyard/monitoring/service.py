"""Who may read `/metrics`, and the exposition itself.

An admin (session cookie or API token) may; so may a scraper presenting the setting
`LABYARD_METRICS_TOKEN` as a bearer token (Prometheus' `authorization` scrape option).
Everyone else gets 404, as for any page they may not see: job counts and queue waits say
how busy the installation is."""

from __future__ import annotations

import hmac

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from labyard.errors import NotFound
from labyard.monitoring.collector import PlatformCollector


def check_scraper(settings: Settings, user: User | None, token: str | None) -> None:
    """NotFound unless `user` is an admin or `token` is the metrics token."""
    expected = settings.metrics_token
    if expected and token is not None and hmac.compare_digest(token, expected):
        return
    if user is not None and user.is_admin:
        return
    raise NotFound("Not found.")


def exposition(settings: Settings, database: Database) -> bytes:
    """The Prometheus text format: this process's counters and histograms (HTTP latency,
    lines ingested), then the gauges read from the database now."""
    platform = CollectorRegistry(auto_describe=False)
    platform.register(PlatformCollector(settings, database))
    return generate_latest(REGISTRY) + generate_latest(platform)
