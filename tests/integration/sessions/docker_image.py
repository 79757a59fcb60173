"""The job image the Docker session tests run: labyard/runner:test with JupyterLab in a venv
(`python` on PATH, as in labyard/runner:latest), built here with no registry: the wheels come
from this machine's pip (`pip download`, same Python 3.11 as the image's Debian bookworm)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from tests import services

SESSION_IMAGE = "labyard/runner:session-test"
LABEL = "io.labyard.jupyterlab"
DOCKERFILE = """\
FROM {base}
USER root
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-index --find-links /tmp/wheels "jupyterlab=={version}" \\
 && rm -rf /tmp/wheels
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin
LABEL {label}={version}
USER mlsteam
"""


def ensure_session_image() -> str:
    """Build SESSION_IMAGE unless it exists with this JupyterLab version; its tag."""
    client = services.docker_client()
    base = services.ensure_image(services.TEST_IMAGE)
    wanted = version("jupyterlab")
    try:
        if client.images.get(SESSION_IMAGE).labels.get(LABEL) == wanted:
            return SESSION_IMAGE
    except Exception:  # noqa: BLE001 - missing: build it
        pass
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        pip = [sys.executable, "-m", "pip", "download", "-q", f"jupyterlab=={wanted}"]
        pip += ["--python-version", "3.11.2", "--only-binary=:all:"]  # bookworm's Python
        subprocess.run([*pip, "-d", str(context / "wheels")], check=True, timeout=600)
        text = DOCKERFILE.format(base=base, version=wanted, label=LABEL)
        (context / "Dockerfile").write_text(text)
        subprocess.run(
            ["docker", "build", "-q", "-t", SESSION_IMAGE, str(context)],
            check=True,
            timeout=900,
            stdout=subprocess.DEVNULL,
        )
    return SESSION_IMAGE
