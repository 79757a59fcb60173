"""login, logout, projects."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from labyard.client import config
from labyard.client.http import Api, ApiError, request_token, revoke_token
from labyard.client.output import JsonOpt, command, err, print_json, show


def add_commands(app: typer.Typer) -> None:
    """Add the account commands to `app`."""
    command(app)(login)
    command(app)(logout)
    command(app)(projects)


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. http://gpu1:8000")],
    username: Annotated[str, typer.Option("--username", "-u", help="Your user name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Log in: store the server's URL and a token (0600) in ~/.config/labyard."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, err=True)
    if not password:
        raise ApiError("no password on standard input")
    url = url.rstrip("/")
    issued = request_token(url, grant_type="password", username=username, password=password)
    credentials = config.Credentials(
        url=url,
        access_token=issued["access_token"],
        refresh_token=issued.get("refresh_token") or "",
        username=username,
    )
    me = Api(credentials).get("/api/v1/me")
    path = config.save_credentials(credentials)
    if as_json:
        print_json(me)
    else:
        err.print(f"Logged in to {url} as {me['username']} (token stored in {path}).")


def logout(as_json: JsonOpt = False) -> None:
    """End the stored login on the server (its refresh token and access token) and forget
    it here. An unreachable server leaves the tokens valid until they expire: it says so."""
    stored = config.stored_credentials()
    revoked, problem = False, ""
    if stored is not None:
        try:
            revoke_token(stored.url, stored.refresh_token or stored.access_token)
            revoked = True
        except ApiError as exc:
            problem = exc.message
    had = config.forget_credentials()
    if as_json:
        print_json({"logged_out": had, "revoked": revoked, "problem": problem or None})
    elif not had:
        err.print("Not logged in.")
    elif problem:
        err.print(f"Logged out here; the server did not end the token ({problem}): it stays")
        err.print("valid until it expires.")
    else:
        err.print("Logged out; the server ended the token.")


def projects(as_json: JsonOpt = False) -> None:
    """The projects you belong to, with your role."""
    show(Api().get("/api/v1/projects"), as_json, ["id", "name", "role", "description"])
