"""`labyard weights` against a live server over real HTTP: register a finished job's model,
list (`--json` prints the API's JSON), download; refusals print the server's message."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from labyard.auth.models import User
from labyard.config import Settings
from labyard.db import Database
from tests.factories import make_job_row
from tests.integration.cli.conftest import Cli
from tests.integration.weights.conftest import OUTPUTS


def test_register_list_and_download(
    cli: Cli, database: Database, settings: Settings, tmp_path: Path
) -> None:
    cli.login()
    with database.session() as db:
        project = db.scalar(select(User.default_project_id).where(User.username == "admin"))
    assert project is not None
    job = make_job_row(database, settings, project, outputs=OUTPUTS)
    made = cli("weights", "register", str(job), "--name", "cli-w", "--json")
    assert made.exit_code == 0, made.output
    weights = json.loads(made.stdout)
    assert weights["name"] == "cli-w" and weights["format"] == "onnx"
    listed = cli("weights", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == cli.api("GET", "/api/v1/weights").json()
    table = cli("weights")
    assert "cli-w" in table.stdout and "onnx" in table.stdout
    got = cli("weights", "download", str(weights["id"]), str(tmp_path))
    assert got.exit_code == 0, got.output
    assert (tmp_path / "model.onnx").read_bytes() == OUTPUTS["model.onnx"]
    refused = cli("weights", "register", str(job), "--name", "cli-w")
    assert refused.exit_code == 1 and "already exist" in refused.stderr
    missing = cli("weights", "register", str(job), "--name", "x", "--path", "../../job.log")
    assert missing.exit_code == 1 and "No such file" in missing.stderr
