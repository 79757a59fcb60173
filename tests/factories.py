"""Test factories and clients: users, logins, tokens. One place for how tests make things."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from labyard.auth import service as auth_service
from labyard.auth.models import User
from labyard.db import Database

ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "correct horse battery"
_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def make_user(database: Database, username: str, *, admin: bool = False) -> User:
    """Create a user with the password PASSWORD."""
    with database.session() as db:
        return auth_service.create_user(db, username=username, password=PASSWORD, is_admin=admin)


class WebClient(TestClient):
    """A TestClient that logs in through the login form and sends the CSRF token like htmx."""

    def __init__(self, app: FastAPI, **kwargs: Any) -> None:
        super().__init__(app, follow_redirects=False, **kwargs)
        self.csrf: str | None = None

    def refresh_csrf(self, path: str = "/settings") -> str:
        """Read the CSRF token from a page (the meta tag when logged in, else the form)."""
        page = self.get(path).text
        match = _CSRF_META.search(page) or _CSRF_INPUT.search(page)
        assert match, f"no CSRF token on {path}"
        self.csrf = match.group(1)
        return self.csrf

    def login(self, username: str, password: str = PASSWORD) -> Any:
        """Log in through the form; afterwards the session's CSRF token is known."""
        page = self.get("/login")
        token = self.csrf if page.status_code != 200 and self.csrf else self.refresh_csrf("/login")
        response = self.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )
        if response.status_code == 303:
            self.refresh_csrf()
        return response

    def hx(self, method: str, url: str, **kwargs: Any) -> Any:
        """A request as htmx sends it: HX-Request and the CSRF header."""
        headers = {
            "HX-Request": "true",
            "X-CSRF-Token": self.csrf or "",
            **kwargs.pop("headers", {}),
        }
        return self.request(method, url, headers=headers, **kwargs)


def bearer_token(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """An OAuth2 access token obtained through the password grant."""
    response = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def auth(token: str) -> dict[str, str]:
    """The Authorization header for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- foundation: fast users, logins

_PASSWORD_HASHES: dict[str, str] = {}


def make_users_fast(database: Database, *usernames: str) -> dict[str, User]:
    """Users with the password PASSWORD and a default project each, like create_user, but
    hashing PASSWORD once per test run (argon2id takes ~0.2 s per hash on the CI machines)."""
    from labyard.auth.passwords import hash_password
    from labyard.projects.service import create_project

    if PASSWORD not in _PASSWORD_HASHES:
        _PASSWORD_HASHES[PASSWORD] = hash_password(PASSWORD)
    users: dict[str, User] = {}
    with database.session() as db:
        for name in usernames:
            user = User(username=name, password_hash=_PASSWORD_HASHES[PASSWORD])
            db.add(user)
            db.flush()
            user.default_project_id = create_project(db, owner=user, name=f"{name}-default").id
            users[name] = user
    return users


def session_client(app: FastAPI, database: Database, user: User) -> WebClient:
    """A WebClient holding a live browser session of `user`, made through the auth service
    (no password check, so no argon2 cost); `client.csrf` is the session's CSRF token.
    The caller closes it (use it in a `with` block)."""
    from labyard.web.deps import SESSION_COOKIE, cookie_signer

    settings = app.state.settings
    with database.session() as db:
        row = auth_service.create_session(db, settings, db.get(User, user.id))  # type: ignore[arg-type]
        session_id, csrf = row.id, row.csrf_token
    client = WebClient(app)
    client.cookies.set(SESSION_COOKIE, cookie_signer(settings, "session").dumps(session_id))
    client.csrf = csrf
    return client


def access_token_for(app: FastAPI, database: Database, user: User) -> str:
    """An OAuth2 access token of `user` issued by the auth service (no password check)."""
    with database.session() as db:
        issued = auth_service.issue_oauth_tokens(db, app.state.settings, db.get(User, user.id))  # type: ignore[arg-type]
        return issued.access_token


# --------------------------------------------------------------------------- jobs


def make_job_flavors(database: Database) -> None:
    """Flavors the jobs tests use: tiny (no GPU), g1 (1 GPU), g2 (2 GPUs); all small."""
    from labyard.flavors.models import Flavor

    with database.session() as db:
        for name, gpus in (("tiny", 0), ("g1", 1), ("g2", 2)):
            db.add(Flavor(name=name, gpus=gpus, cpus=0.1, memory_mb=64, description=name))


# --------------------------------------------------------------------------- tensorboard

from pathlib import Path  # noqa: E402 - appended section


def write_scalars(logdir: Path, tag: str = "Train/loss", steps: int = 5) -> None:
    """A real TensorBoard event file in `logdir` with `steps` values of scalar `tag`."""
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(logdir))
    for step in range(steps):
        value = Summary.Value(tag=tag, simple_value=1.0 / (step + 1))
        writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=[value])))
    writer.close()


def make_job_with_scalars(
    database: Database,
    settings: Any,
    project_id: int,
    name: str = "train",
    tag: str = "Train/loss",
) -> int:
    """A finished job row of `project_id` whose output/tensorboard holds scalar `tag`; its id."""
    from labyard.jobs.models import Job
    from labyard.jobs.service import job_dir

    with database.session() as db:
        job = Job(
            project_id=project_id,
            name=name,
            status="succeeded",
            params={},
            command=["true"],
            flavor="cpu",
        )
        db.add(job)
        db.flush()
        job_id = job.id
    write_scalars(job_dir(settings, job_id) / "output" / "tensorboard", tag)
    return job_id


# --------------------------------------------------------------------------- datasets


def add_member(database: Database, project_id: int, user: User, role: str) -> None:
    """Give `user` the role READ / WRITE / OWN in the project (no permission check)."""
    from labyard.projects.models import Membership, Role

    with database.session() as db:
        db.add(Membership(project_id=project_id, user_id=user.id, role=Role[role]))


def make_dataset(
    database: Database, settings: Any, owner: User, project_id: int, name: str = "ds"
) -> int:
    """An empty dataset in the project, created by `owner`; its id."""
    from labyard.datasets import service as dataset_service

    with database.session() as db:
        user = db.get(User, owner.id)
        assert user is not None
        dataset = dataset_service.create_dataset(
            db, settings, user=user, name=name, project_id=project_id
        )
        return dataset.id


# --------------------------------------------------------------------------- job pages


def add_points(db: Any, job_id: int, points: dict[str, list[tuple[float, float]]]) -> None:
    """Store metric points (name -> [(x, y)], x over `step`) the way ingestion does, so
    their series summaries and chart buckets exist too."""
    from labyard.db import utcnow
    from labyard.jobs.metrics import Point, store_points

    now = utcnow()
    batch = [(Point(name, "step", x, y), now) for name, values in points.items() for x, y in values]
    for start in range(0, len(batch), 20_000):
        store_points(db, job_id, batch[start : start + 20_000])


def make_sweep_row(
    database: Database, settings: Any, project_id: int, runs: list[dict[str, Any]], name: str = "s"
) -> tuple[int, list[int]]:
    """A sweep of `project_id` with one job row per run (make_job_row's keyword arguments,
    e.g. params and points); (sweep id, job ids in order)."""
    from labyard.jobs.models import Sweep

    with database.session() as db:
        sweep = Sweep(project_id=project_id, name=name, flavor="cpu", grid={})
        db.add(sweep)
        db.flush()
        sweep_id = sweep.id
    jobs = [make_job_row(database, settings, project_id, sweep_id=sweep_id, **run) for run in runs]
    return sweep_id, jobs


def make_job_row(
    database: Database,
    settings: Any,
    project_id: int,
    *,
    status: str = "succeeded",
    log_lines: list[str] | None = None,
    points: dict[str, list[tuple[float, float]]] | None = None,
    outputs: dict[str, bytes] | None = None,
    **fields: Any,
) -> int:
    """A job row of `project_id` with a timestamped log, metric points (name -> [(x, y)],
    x over `step`), output files and a lab snapshot; its id. No process runs."""
    from datetime import timedelta

    from labyard.db import utcnow
    from labyard.jobs.logs import LogWriter
    from labyard.jobs.models import FINAL_STATUSES, Job
    from labyard.jobs.service import job_dir

    started = utcnow() - timedelta(minutes=5)
    final = status in FINAL_STATUSES
    with database.session() as db:
        job = Job(
            project_id=project_id,
            name=fields.pop("name", "job"),
            status=status,
            params=fields.pop("params", {"lr": 0.1}),
            command=fields.pop("command", ["python", "train.py", "--lr", "0.1"]),
            flavor=fields.pop("flavor", "cpu"),
            started_at=None if status in ("queued", "starting") else started,
            finished_at=utcnow() if final else None,
            exit_code=0 if status == "succeeded" else fields.pop("exit_code", None),
            **fields,
        )
        db.add(job)
        db.flush()
        job_id = job.id
        add_points(db, job_id, points or {})
    folder = job_dir(settings, job_id)
    (folder / "lab").mkdir(parents=True, exist_ok=True)
    (folder / "lab" / "mlsteam.yml").write_text("command: python train.py\nparams:\n  lr: 0.1\n")
    (folder / "output").mkdir(exist_ok=True)
    for rel, data in (outputs or {}).items():
        target = folder / "output" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    writer = LogWriter(folder / "job.log", 1 << 30)
    for line in log_lines or []:
        writer.write_line(line.encode())
    writer.close()
    return job_id


OUTCOME_OK, OUTCOME_LOGIN = "ok", "login"


def permission_outcome(response: Any, refusals: tuple[int, ...] = (403, 404)) -> str:
    """What a permission matrix records of one response: "login" (401, or a page sent to
    the login form), the status of an expected refusal as text ("403", "404", ...), or "ok";
    any other error fails the test."""
    location = response.headers.get("location", "") or response.headers.get("hx-redirect", "")
    if response.status_code == 401 or (
        response.status_code in (204, 303) and location.startswith("/login")
    ):
        return OUTCOME_LOGIN
    if response.status_code in refusals:
        return str(response.status_code)
    assert response.status_code < 400, f"unexpected {response.status_code}: {response.text[:300]}"
    return OUTCOME_OK
