"""Live updates of the jobs pages as server-sent events: one stream per page.

Job page (`/jobs/{id}/events`): named events `log` (new whole lines as the log box's HTML,
rendered by `ansi.lines_html` like the page's first tail), `metrics` (new metric
points), `status` (the job's state when it changed) and `end` (the job is final and
everything was sent). Every event's id is the stream's cursor `"<log_offset>.<metric_id>"`,
so a browser that reconnects with `Last-Event-ID` continues exactly after what it had; the
state is sent again on every (re)connection. Each subscriber has its own generator that
tails the log file from its cursor and polls the database for newer points: nothing is
shared between clients, so every subscriber gets every event.

Jobs lists (`/jobs/events?ids=...`): `row` events with a visible job's state and metric
summary whenever it changed, and `end` once every job shown is final.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import Request

from labyard.db import Database
from labyard.jobs import ansi, views
from labyard.jobs.logs import complete_lines
from labyard.jobs.models import Job
from labyard.numbers import ascii_int

LOG_CHUNK = 512 * 1024
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass
class Cursor:
    """Where a job stream stands: the log byte offset and the last metric point id sent."""

    log_offset: int = 0
    metric_id: int = 0

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """`"<log_offset>.<metric_id>"` (None when missing or malformed)."""
        if not text:
            return None
        head, _, tail = text.strip().partition(".")
        log_offset, metric_id = ascii_int(head, 2**62), ascii_int(tail)
        if log_offset is None or metric_id is None:
            return None
        return cls(log_offset, metric_id)

    def __str__(self) -> str:
        return f"{self.log_offset}.{self.metric_id}"


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    """One server-sent event; `data` as one line of JSON."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass
class JobUpdate:
    """What one poll found for a job stream."""

    html: str  # the new whole lines, rendered by labyard.jobs.ansi
    log_offset: int
    points: list[tuple[Any, ...]]
    state: dict[str, Any] | None


def poll_job(
    database: Database,
    job_id: int,
    log_path: Any,
    cursor: Cursor,
    *,
    with_db: bool = True,
    fair_share_days: float,
) -> JobUpdate:
    """Read new log lines and, when `with_db`, metric points after `cursor` and the job's
    state (blocking). Without the database the state is None and nothing is read there."""
    raw, offset = complete_lines(log_path, cursor.log_offset, LOG_CHUNK)
    lines = [line.decode("utf-8", errors="replace") for line in raw]
    html = ansi.lines_html(lines)  # the same renderer as the page's first tail
    if not with_db:
        return JobUpdate(html, offset, [], None)
    with database.read_session() as db:
        job = db.get(Job, job_id)
        state = None
        points: list[tuple[Any, ...]] = []
        if job is not None:
            position = views.queue_positions(db, [job], fair_share_days).get(job.id)
            state = views.row_state(job, position)
            points = views.new_points(db, job_id, cursor.metric_id)
    return JobUpdate(html, offset, points, state)


async def job_events(
    request: Request,
    database: Database,
    job_id: int,
    log_path: Any,
    cursor: Cursor,
    *,
    poll_seconds: float,
    db_poll_seconds: float,
    fair_share_days: float,
) -> AsyncIterator[str]:
    """The event stream of one job page (one generator per subscriber)."""
    yield "retry: 1000\n\n"
    last_state: dict[str, Any] | None = None
    next_db = 0.0  # the log file is tailed every poll; the database every db_poll_seconds
    while True:
        now = time.monotonic()
        with_db = now >= next_db
        if with_db:
            next_db = now + db_poll_seconds
        update = await to_thread.run_sync(
            partial(
                poll_job,
                database,
                job_id,
                log_path,
                cursor,
                with_db=with_db,
                fair_share_days=fair_share_days,
            )
        )
        sent = False
        if update.html:
            cursor.log_offset = update.log_offset
            yield sse("log", {"html": update.html}, str(cursor))
            sent = True
        elif update.log_offset != cursor.log_offset:  # an over-long line was skipped
            cursor.log_offset = update.log_offset
        if update.points:
            cursor.metric_id = update.points[-1][0]
            data = [list(p[1:]) for p in update.points]
            yield sse("metrics", {"points": data}, str(cursor))
            sent = True
        state = update.state
        if not with_db:
            if not sent:
                if await request.is_disconnected():
                    return
                await asyncio.sleep(poll_seconds)
            continue
        if state is None:
            yield sse("end", {"reason": "deleted"}, str(cursor))
            return
        comparable = {k: v for k, v in state.items() if k != "elapsed_seconds"}
        if comparable != last_state:
            last_state = comparable
            yield sse("status", state, str(cursor))
        if state["final"] and not sent:
            yield sse("end", {"reason": state["status"]}, str(cursor))
            return
        if sent:
            continue  # more may be waiting: read again at once
        if await request.is_disconnected():
            return
        await asyncio.sleep(poll_seconds)


def poll_rows(
    database: Database,
    user_id: int,
    job_ids: list[int],
    fair_share_days: float,
) -> list[dict[str, Any]]:
    """The rows' current state and metric summaries (blocking)."""
    from labyard.auth.models import User

    with database.read_session() as db:
        user = db.get(User, user_id)
        if user is None:
            return []
        jobs = views.visible_jobs(db, user, job_ids)
        positions = views.queue_positions(db, jobs, fair_share_days)
        summaries = views.metric_summaries(db, [j.id for j in jobs])
        rows = []
        for job in jobs:
            row = views.row_state(job, positions.get(job.id))
            row["metrics"] = {
                name: [s.latest, s.best] for name, s in summaries.get(job.id, {}).items()
            }
            rows.append(row)
        return rows


async def rows_events(
    request: Request,
    poll: Callable[[], list[dict[str, Any]]],
    *,
    poll_seconds: float,
) -> AsyncIterator[str]:
    """The event stream of a jobs list: `row` when a row changed, `end` when all are final."""
    yield "retry: 2000\n\n"
    last: dict[int, dict[str, Any]] = {}
    while True:
        rows = await to_thread.run_sync(poll)
        for row in rows:
            comparable = {k: v for k, v in row.items() if k != "elapsed_seconds"}
            if last.get(row["id"]) != comparable:
                last[row["id"]] = comparable
                yield sse("row", row)
        if all(row["final"] for row in rows):
            yield sse("end", {})
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(poll_seconds)
