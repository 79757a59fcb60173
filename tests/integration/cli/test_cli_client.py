"""The `labyard` client against a live server over real HTTP: login, projects, labs, a grid
submitted and followed to its end (jobs, logs, metrics, download, stop), `--json` equal to
the API's JSON, and refusals that print the server's message and exit non-zero."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import ADMIN_PASSWORD
from tests.integration.cli.conftest import Cli
from tests.integration.jobs.conftest import write_lab


def test_login_stores_a_private_token_and_refusals_say_why(cli: Cli) -> None:
    missing = cli("projects")
    assert missing.exit_code == 1 and "labyard login URL" in missing.stderr
    wrong = cli.run("login", cli.url, "--username", "admin", "--password-stdin", stdin="nope\n")
    said = httpx.post(
        f"{cli.url}/api/v1/auth/token",
        data={"grant_type": "password", "username": "admin", "password": "nope"},
    ).json()["error_description"]
    assert wrong.returncode == 1 and wrong.stderr.strip() == f"error: {said}"
    assert not (cli.home / "labyard" / "credentials.json").exists()

    cli.login()
    stored = cli.home / "labyard" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert ADMIN_PASSWORD not in stored.read_text()
    assert json.loads(stored.read_text())["url"] == cli.url

    listed = cli.run("projects", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == cli.api("GET", "/api/v1/projects").json()
    table = cli("projects")
    assert table.exit_code == 0 and "admin" in table.stdout and "OWN" in table.stdout

    unknown = cli.run("logs", "987654")
    detail = cli.api("GET", "/api/v1/jobs/987654/logs").json()["detail"]
    assert unknown.returncode == 1 and unknown.stderr.strip() == f"error: {detail}"
    assert cli("stop", "987654").exit_code == 1
    assert cli("submit", "1", "--param", "no-equals-sign").exit_code == 2  # usage error

    tokens = json.loads(stored.read_text())
    out = cli("logout")
    assert out.exit_code == 0 and "the server ended the token" in out.stderr
    assert not stored.exists()
    assert cli("jobs").exit_code == 1
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = httpx.get(f"{cli.url}/api/v1/me", headers=bearer)
    renewed = httpx.post(
        f"{cli.url}/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert me.status_code == 401 and renewed.status_code == 400  # ended on the server


def test_logout_from_an_unreachable_server_forgets_the_login_and_says_so(cli: Cli) -> None:
    cli.login()
    stored = cli.home / "labyard" / "credentials.json"
    moved = {**json.loads(stored.read_text()), "url": "http://127.0.0.1:9"}  # nothing listens
    stored.write_text(json.dumps(moved))
    out = cli("logout", "--json")
    assert out.exit_code == 0 and not stored.exists()
    said = json.loads(out.stdout)
    assert said["logged_out"] is True and said["revoked"] is False
    assert "cannot reach http://127.0.0.1:9" in said["problem"]


def _project(cli: Cli) -> str:
    return str(cli.api("GET", "/api/v1/projects").json()[0]["id"])


def _wait_final(cli: Cli, job_ids: list[int]) -> list[dict[str, object]]:
    deadline = time.monotonic() + 120
    while True:
        jobs = [cli.api("GET", f"/api/v1/jobs/{i}").json() for i in job_ids]
        if all(j["finished_at"] for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.2)


@pytest.mark.slow
def test_a_grid_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    cli.login()
    created = cli("lab", "create", "cli-lab", "--project", _project(cli), "--json")
    assert created.exit_code == 0, created.output
    lab = json.loads(created.stdout)
    assert lab == cli.api("GET", f"/api/v1/labs/{lab['id']}").json()
    code = write_lab(tmp_path / "code")
    pushed = cli("lab", "files", "push", str(lab["id"]), str(code))
    assert pushed.exit_code == 0, pushed.output
    pulled = cli("lab", "files", "pull", "cli-lab", str(tmp_path / "copy"))
    assert pulled.exit_code == 0, pulled.output
    for name in ("job.py", "mlsteam.yml"):
        assert (tmp_path / "copy" / name).read_bytes() == (code / name).read_bytes()

    submitted = cli(
        "submit", str(lab["id"]), "--param", "mode=ok,fail", "--flavor", "cpu", "--json"
    )
    assert submitted.exit_code == 0, submitted.output
    sweep = json.loads(submitted.stdout)
    ids = [j["id"] for j in sweep["jobs"]]
    assert [j["params"] for j in sweep["jobs"]] == [{"mode": "ok"}, {"mode": "fail"}]

    watched = cli.run("jobs", "--lab", str(lab["id"]), "--watch", "--json")
    assert watched.returncode == 0, watched.stderr
    final = json.loads(watched.stdout)
    assert sorted(j["id"] for j in final) == sorted(ids)
    assert {j["status"] for j in final} == {"succeeded", "failed"}
    assert final == cli.api("GET", "/api/v1/jobs", params={"lab_id": lab["id"]}).json()
    table = cli("jobs", "--lab", str(lab["id"]))
    assert "succeeded" in table.stdout and "failed" in table.stdout

    ok = ids[0]
    log = cli("logs", str(ok))
    assert log.stdout == cli.api("GET", f"/api/v1/jobs/{ok}/logs").text
    assert "Train step=3" in log.stdout
    followed = cli.run("logs", str(ok), "-f")
    assert followed.returncode == 0 and followed.stdout == log.stdout
    assert "succeeded" in followed.stderr

    series = cli("metrics", str(ok), "--json")
    assert json.loads(series.stdout) == cli.api("GET", f"/api/v1/jobs/{ok}/metrics").json()
    names = [s["name"] for s in json.loads(series.stdout)["series"]]
    assert "Train_loss" in names, names
    points = cli("metrics", str(ok), "--name", "Train_loss")
    assert points.exit_code == 0 and "0.3333" in points.stdout

    dest = tmp_path / "out"
    fetched = cli("download", str(ok), "--dest", str(dest), "--json")
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.stdout) == cli.api("GET", f"/api/v1/jobs/{ok}/files").json()
    assert (dest / "done.txt").read_text() == "done"
    one = cli("download", str(ok), "starts.txt", "--dest", str(tmp_path / "one"))
    assert one.exit_code == 0 and [p.name for p in (tmp_path / "one").iterdir()] == ["starts.txt"]
    absent = cli("download", str(ok), "nothing-here")
    assert absent.exit_code == 1 and "no output file" in absent.stderr


@pytest.mark.slow
def test_stop_and_tensorboard(cli: Cli, tmp_path: Path) -> None:
    cli.login()
    lab = json.loads(cli("lab", "create", "stopper", "--project", _project(cli), "--json").stdout)
    cli("lab", "files", "push", str(lab["id"]), str(write_lab(tmp_path / "code")))
    sweep = json.loads(cli("submit", "stopper", "-p", "mode=sleep", "--json").stdout)
    [job] = [j["id"] for j in sweep["jobs"]]
    deadline = time.monotonic() + 60
    while "sleeping" not in cli.api("GET", f"/api/v1/jobs/{job}/logs").text:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.2)
    stopped = cli("stop", str(job), "--json")
    assert stopped.exit_code == 0, stopped.output
    assert json.loads(stopped.stdout)["stop_requested"] is True
    [final] = _wait_final(cli, [job])
    assert final["status"] == "stopped"
    again = cli("stop", str(job))
    detail = cli.api("POST", f"/api/v1/jobs/{job}/stop").json()["detail"]
    assert again.exit_code == 1 and again.stderr.strip() == f"error: {detail}"

    board = cli.run("tensorboard", str(job))
    assert board.returncode == 0, board.stderr
    url = board.stdout.strip()
    assert url.startswith(cli.url + "/tensorboard/"), url


def test_env_token_overrides_the_stored_login(cli: Cli) -> None:
    cli.login()
    token = json.loads((cli.home / "labyard" / "credentials.json").read_text())["access_token"]
    expected = cli.api("GET", "/api/v1/datasets").json()
    (cli.home / "labyard" / "credentials.json").unlink()
    env = {**cli.env, "LABYARD_URL": cli.url, "LABYARD_TOKEN": token}
    done = subprocess.run(
        [sys.executable, "-m", "labyard.cli", "datasets", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
