"""The `labyard` command. Server side: serve, migrate, scheduler, check-executor, backup,
restore, user create | passwd | list (they read the LABYARD_* settings). User side: login,
projects, labs, datasets, submit, jobs, logs ... over the JSON API (labyard/client)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from labyard.client import account, datasets, jobs, labs, searches, weights

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from labyard.config import Settings

app = typer.Typer(
    name="labyard",
    help="Labyard training platform: run the server, or use one over its API.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
user_app = typer.Typer(help="Manage users (on the server's database).", no_args_is_help=True)
app.add_typer(user_app, name="user")
for _group in (account, labs, datasets, jobs, searches, weights):
    _group.add_commands(app)
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _read_password_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise SystemExit("error: no password on standard input")
    return password


def _announce_job_isolation(settings: Settings) -> None:
    """Create the job user if needed; say plainly what local jobs can read."""
    from labyard.jobs.isolation import ensure_job_user, isolation_warnings

    created = ensure_job_user(settings)
    if created:
        print(created, flush=True)
    for warning in isolation_warnings(settings):
        print(f"WARNING: {warning}", flush=True)


def _load_settings() -> Settings:
    """The LABYARD_* settings; a bad one is one line on stderr naming it (status 2), never
    its value."""
    from pydantic import ValidationError

    from labyard.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            print(f"error: LABYARD_{field.upper()}: {message}", file=sys.stderr)
        raise typer.Exit(2) from None


def _on_server(run: Callable[[Settings], int]) -> None:
    """Run a server command on the settings; an unreachable database is one line on stderr
    that shows no secret (the URL's password), not a traceback."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from labyard.db.urls import shown_url

    settings = _load_settings()
    try:
        result = run(settings)
    except (OperationalError, ArgumentError, NoSuchModuleError) as exc:
        reason = str(exc.orig if isinstance(exc, OperationalError) else exc).strip()
        url = shown_url(settings.resolved_database_url)
        print(f"error: database {url}: {reason}", file=sys.stderr)
        raise typer.Exit(1) from None
    if result:
        raise typer.Exit(result)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (LABYARD_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (LABYARD_PORT).")] = None,
) -> None:
    """Migrate, seed on first start, and serve HTTP (and run the scheduler)."""
    _on_server(lambda settings: run_serve(settings, host=host, port=port))


def run_serve(settings: Settings, *, host: str | None, port: int | None) -> int:
    """Migrate, seed on first start, print where things are, and serve HTTP."""
    import uvicorn

    from labyard.app import create_app
    from labyard.bootstrap import ADMIN_USERNAME, prepare
    from labyard.db import Database

    if host:
        settings.host = host
    if port:
        settings.port = port
    database = Database(settings.resolved_database_url)
    result = prepare(settings, database)
    _ = settings.resolved_secret_key  # generated and kept in the data dir on first start
    print(f"Labyard data directory: {settings.data_dir}", flush=True)
    _announce_job_isolation(settings)
    if result.admin_created:
        if result.admin_password:
            print(
                f"Created the admin account: username {ADMIN_USERNAME!r}, "
                f"password {result.admin_password!r} (shown once; change it under Settings).",
                flush=True,
            )
        else:
            print(
                f"Created the admin account {ADMIN_USERNAME!r} with LABYARD_ADMIN_PASSWORD.",
                flush=True,
            )
    print(f"Labyard listening on http://{settings.host}:{settings.port}/", flush=True)
    uvicorn.run(
        create_app(settings, database=database),
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=False,
    )
    return 0


@app.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""

    def run(settings: Settings) -> int:
        from labyard.bootstrap import migrate
        from labyard.db.urls import shown_url

        migrate(settings)
        print(f"Database at head: {shown_url(settings.resolved_database_url)}")
        return 0

    _on_server(run)


def require_database(settings: Settings) -> None:
    """Refuse to create a database that no setting asked for: with neither LABYARD_DATA_DIR
    nor LABYARD_DATABASE_URL set, the default data folder's SQLite file must exist."""
    from sqlalchemy.engine import make_url

    if settings.database_url or "data_dir" in settings.model_fields_set:
        return
    path = make_url(settings.resolved_database_url).database or ""
    if not Path(path).exists():
        raise SystemExit(
            f"error: no Labyard database in {settings.data_dir} (the default data folder; "
            "LABYARD_DATA_DIR is not set). Set LABYARD_DATA_DIR (or LABYARD_DATABASE_URL) to "
            "the server's, or run `labyard migrate` (or `labyard serve`) to create one there."
        )


def _on_users(run: Callable[[Session], None]) -> None:
    """Run a user command in one transaction of the server's database."""

    def on_settings(settings: Settings) -> int:
        from labyard.app import wire_hooks
        from labyard.bootstrap import migrate
        from labyard.db import Database
        from labyard.errors import DomainError

        require_database(settings)
        migrate(settings)
        wire_hooks()
        database = Database(settings.resolved_database_url)
        try:
            with database.session() as db:
                run(db)
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        finally:
            database.dispose()
        return 0

    _on_server(on_settings)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The new user's name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make them an administrator.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (password read from standard input)."""

    def run(db: Session) -> None:
        from labyard.auth import service

        if not password_stdin:
            raise SystemExit("error: give the password with --password-stdin")
        password = _read_password_stdin()
        service.create_user(db, username=name, password=password, is_admin=admin)
        print(f"Created user {name!r}" + (" (admin)" if admin else ""))

    _on_users(run)


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="The user.")], password_stdin: PasswordStdin = False
) -> None:
    """Set a user's password; their sessions and tokens end."""

    def run(db: Session) -> None:
        from labyard.auth import service

        if not password_stdin:
            raise SystemExit("error: give the password with --password-stdin")
        password = _read_password_stdin()
        service.set_password(db, service.get_user_by_name(db, name), password)
        print(f"Password of {name!r} changed; their sessions and tokens ended.")

    _on_users(run)


@user_app.command("list")
def user_list() -> None:
    """List users: id, name, flags (admin, inactive)."""

    def run(db: Session) -> None:
        from labyard.auth import service

        for user in service.list_users(db):
            flags = ",".join(
                f for f, on in (("admin", user.is_admin), ("inactive", not user.is_active)) if on
            )
            print(f"{user.id}\t{user.username}\t{flags}")

    _on_users(run)


@app.command()
def scheduler() -> None:
    """Run only the job scheduler (when LABYARD_START_SCHEDULER=false on the web servers)."""

    def run(settings: Settings) -> int:
        from labyard.app import SCHEDULER_STEPS, wire_hooks
        from labyard.bootstrap import migrate
        from labyard.jobs.lifecycle import run_scheduler_forever

        migrate(settings)
        wire_hooks()
        _announce_job_isolation(settings)
        return run_scheduler_forever(settings, SCHEDULER_STEPS)

    _on_server(run)


@app.command("check-executor")
def check_executor() -> None:
    """Check that the executor can run jobs (Slurm: a short job reads a probe file that this
    machine writes into the data folder); say what is wrong when it cannot."""

    def run(settings: Settings) -> int:
        from labyard.jobs.executors import make_executor
        from labyard.jobs.executors.base import ExecutorError

        executor = make_executor(settings)
        try:
            executor.check()
        except (ExecutorError, OSError) as exc:
            print(f"error: the {executor.name} executor cannot run jobs: {exc}", file=sys.stderr)
            return 1
        print(f"ok: the {executor.name} executor can run jobs")
        return 0

    _on_server(run)


@app.command()
def backup(
    folder: Annotated[Path, typer.Argument(help="A new (or empty) folder for the backup.")],
) -> None:
    """Back up the database and the data folder while jobs run (see Backup and restore)."""

    def run(settings: Settings) -> int:
        from labyard.ops.backup import backup as take_backup
        from labyard.ops.backup import describe
        from labyard.ops.manifest import BackupError

        try:
            manifest = take_backup(settings, folder)
        except BackupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(describe(manifest, folder.expanduser().resolve()))
        return 0

    _on_server(run)


@app.command()
def restore(
    folder: Annotated[Path, typer.Argument(help="A folder `labyard backup` made.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a data folder or database that holds data.")
    ] = False,
) -> None:
    """Restore a backup into an empty data folder and database, then migrate."""

    def run(settings: Settings) -> int:
        from labyard.ops.manifest import BackupError
        from labyard.ops.restore import restore as restore_backup

        try:
            manifest = restore_backup(settings, folder, force=force)
        except BackupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(
            f"Restored the backup of {manifest.created_at} ({manifest.files.count} files) into "
            f"{settings.data_dir}; the database is at the newest schema."
        )
        return 0

    _on_server(run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `labyard` command: its exit status (2 for a usage error)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="labyard")
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 1
        return exc.code or 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
