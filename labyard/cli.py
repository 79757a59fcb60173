"""The `labyard` command: serve, migrate, scheduler, user create | passwd | list."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from labyard.config import Settings


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


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, seed on first start, print where things are, and serve HTTP."""
    import uvicorn

    from labyard.app import create_app
    from labyard.bootstrap import ADMIN_USERNAME, prepare
    from labyard.db import Database

    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
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


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    """Bring the database schema up to date."""
    from labyard.bootstrap import migrate
    from labyard.db.urls import shown_url

    migrate(settings)
    print(f"Database at head: {shown_url(settings.resolved_database_url)}")
    return 0


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    """User management from the shell."""
    from labyard.app import wire_hooks
    from labyard.auth import service
    from labyard.bootstrap import migrate
    from labyard.db import Database
    from labyard.errors import DomainError

    migrate(settings)
    wire_hooks()
    database = Database(settings.resolved_database_url)
    try:
        with database.session() as db:
            if args.user_command == "create":
                password = _read_password_stdin() if args.password_stdin else None
                if password is None:
                    raise SystemExit("error: give the password with --password-stdin")
                service.create_user(db, username=args.name, password=password, is_admin=args.admin)
                print(f"Created user {args.name!r}" + (" (admin)" if args.admin else ""))
            elif args.user_command == "passwd":
                if not args.password_stdin:
                    raise SystemExit("error: give the password with --password-stdin")
                password = _read_password_stdin()
                service.set_password(db, service.get_user_by_name(db, args.name), password)
                print(f"Password of {args.name!r} changed; their sessions and tokens ended.")
            else:
                for user in service.list_users(db):
                    flags = ",".join(
                        f
                        for f, on in (("admin", user.is_admin), ("inactive", not user.is_active))
                        if on
                    )
                    print(f"{user.id}\t{user.username}\t{flags}")
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    return 0


def cmd_scheduler(_args: argparse.Namespace, settings: Settings) -> int:
    """Run the job scheduler on its own until interrupted (the lease keeps it single)."""
    from labyard.app import SCHEDULER_STEPS, wire_hooks
    from labyard.bootstrap import migrate
    from labyard.jobs.lifecycle import run_scheduler_forever

    migrate(settings)
    wire_hooks()
    _announce_job_isolation(settings)
    return run_scheduler_forever(settings, SCHEDULER_STEPS)


def cmd_check_executor(_args: argparse.Namespace, settings: Settings) -> int:
    """Check that the executor can run jobs (Slurm: a short job reads a probe file that this
    machine writes into the data folder); say what is wrong when it cannot."""
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `labyard`."""
    parser = argparse.ArgumentParser(prog="labyard", description="Labyard training platform")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, seed on first start, and serve HTTP")
    serve.add_argument("--host", help="address to listen on (LABYARD_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (LABYARD_PORT)")
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser("migrate", help="bring the database schema to head")
    migrate.set_defaults(func=cmd_migrate)
    scheduler = sub.add_parser("scheduler", help="run the job scheduler on its own")
    scheduler.set_defaults(func=cmd_scheduler)
    check = sub.add_parser("check-executor", help="check that jobs can run (Slurm: the probe)")
    check.set_defaults(func=cmd_check_executor)
    user = sub.add_parser("user", help="manage users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="make the user an administrator")
    create.add_argument("--password-stdin", action="store_true", help="read the password")
    passwd = user_sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password")
    user_sub.add_parser("list", help="list users")
    user.set_defaults(func=cmd_user)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `labyard` command. A bad setting or an unreachable database is one
    line on stderr that shows no secret (a setting's value, the URL's password), not a
    traceback."""
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from labyard.db.urls import shown_url

    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            print(f"error: LABYARD_{field.upper()}: {message}", file=sys.stderr)
        return 2
    try:
        result: int = args.func(args, settings)
    except (OperationalError, ArgumentError, NoSuchModuleError) as exc:
        reason = str(exc.orig if isinstance(exc, OperationalError) else exc).strip()
        url = shown_url(settings.resolved_database_url)
        print(f"error: database {url}: {reason}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
