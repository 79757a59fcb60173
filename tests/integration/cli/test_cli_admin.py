"""Admin commands without a data-folder setting refuse rather than create an empty
database in the default folder; once it exists (or a setting names one) they work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _labyard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labyard.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_user_commands_refuse_without_a_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABYARD_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # where the default data folder would be
    default = tmp_path / "xdg" / "labyard"
    refused = _labyard(env, "user", "list")
    assert refused.returncode == 1
    assert "no Labyard database" in refused.stderr and "LABYARD_DATA_DIR" in refused.stderr
    assert "labyard migrate" in refused.stderr and "Traceback" not in refused.stderr
    assert not (default / "labyard.db").exists()
    create = _labyard(env, "user", "create", "bob", "--password-stdin")
    assert create.returncode == 1 and not (default / "labyard.db").exists()

    assert _labyard(env, "migrate").returncode == 0
    assert (default / "labyard.db").exists()
    listed = _labyard(env, "user", "list")
    assert listed.returncode == 0, listed.stderr

    named = {**env, "LABYARD_DATA_DIR": str(tmp_path / "chosen")}
    assert _labyard(named, "user", "list").returncode == 0  # a setting named the folder
    assert (tmp_path / "chosen" / "labyard.db").exists()
