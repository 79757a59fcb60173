"""login, logout, projects."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from labyard.client import config
from labyard.client.http import Api, ApiError, request_token
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
    """Forget the stored login (the token stays valid until it expires)."""
    had = config.forget_credentials()
    if as_json:
        print_json({"logged_out": had})
    else:
        err.print("Logged out." if had else "Not logged in.")


def projects(as_json: JsonOpt = False) -> None:
    """The projects you belong to, with your role."""
    show(Api().get("/api/v1/projects"), as_json, ["id", "name", "role", "description"])
