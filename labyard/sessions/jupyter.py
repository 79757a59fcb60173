"""One session's JupyterLab: its files in the job's folder, its command, its token, and
asking it how it is (over its Unix socket).

A session is a job whose command starts JupyterLab on a Unix socket in the job's output
folder (`<job>/output/.labyard/jupyter.sock`, `/mlsteam/output/.labyard/` in Docker), never a
TCP port: nothing on the host or the container's network can reach it, ports never clash,
and the same command works for every executor (it reads the job contract's
`$MLSTEAM_OUTPUT_DIR`). The socket is 0600 in a 0700 folder; JupyterLab also wants its own
token, which only the proxy sends (the token comes from `session.json` beside the socket
through the environment, so it shows in no process list, and JupyterLab logs it as "...").
The job's `lab/` is a (relative) link to the lab's folder: the session works in the lab's
own files.

On a Slurm cluster the session runs on a node, whose Unix sockets the server cannot reach:
there `session.json` says `"listen": "tcp"`, and JupyterLab listens on a free port of the
node (all interfaces, its token required on every request), written to `address.json` in
the same folder on the shared filesystem, where the proxy finds it (as batchspawner does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

from labyard.config import Settings

RUN_DIR = ".labyard"  # inside the job's output folder
SOCKET_NAME = "jupyter.sock"
ADDRESS_NAME = "address.json"  # JupyterLab's host and port on a cluster's node
CONFIG_NAME = "session.json"
STATUS_TIMEOUT = httpx.Timeout(3.0, connect=1.0)
# The job's command: a fixed program (no user input, no shell) that reads the session's
# settings next to its socket, keeps JupyterLab's state in the output folder (HOME may be
# read-only in a container) and execs JupyterLab on the socket, in the lab's folder.
BOOTSTRAP = """\
import json, os, sys
run = os.path.join(os.environ["MLSTEAM_OUTPUT_DIR"], ".labyard")
try:
    with open(os.path.join(run, "session.json")) as fh:
        conf = json.load(fh)
except OSError:
    sys.exit("labyard: this job is not a lab session; start the session from its lab")
for name, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"),
                  ("JUPYTER_CONFIG_DIR", "config"), ("IPYTHONDIR", "ipython")):
    os.environ[name] = os.path.join(run, sub)
os.environ["JUPYTER_TOKEN"] = conf["token"]
address = os.path.join(run, "address.json")
if os.path.exists(address):
    os.unlink(address)  # an earlier run's (a requeue)
if conf.get("listen") == "tcp":
    import socket
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    with open(address + ".tmp", "w") as fh:
        json.dump({"host": socket.gethostname(), "port": port}, fh)
    os.replace(address + ".tmp", address)
    listen = ["--ServerApp.ip=0.0.0.0", "--ServerApp.port=%d" % port,
              "--ServerApp.port_retries=0"]
else:
    sock = os.path.join(run, "jupyter.sock")
    short = os.path.relpath(sock)
    sock = short if len(short) < len(sock) else sock
    listen = ["--ServerApp.sock=" + sock, "--ServerApp.sock_mode=0600"]
print("labyard: starting JupyterLab in", os.getcwd(), flush=True)
os.execv(sys.executable, [sys.executable, "-m", "jupyterlab", "--no-browser", *listen,
    "--ServerApp.base_url=" + conf["base_url"], "--ServerApp.root_dir=" + os.getcwd(),
    "--ServerApp.allow_remote_access=True", "--ServerApp.allow_origin=*",
    "--ServerApp.disable_check_xsrf=True", "--ServerApp.terminals_enabled=True", "--allow-root",
    "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"])
"""
COMMAND = ["python", "-c", BOOTSTRAP]


def base_url(lab_id: int) -> str:
    """Where a lab's JupyterLab serves (the proxy forwards paths unchanged)."""
    return f"/labs/{lab_id}/session/"


def token(settings: Settings, job_id: int) -> str:
    """The JupyterLab token of a session's job (derived from the secret key, never stored)."""
    key = settings.resolved_secret_key.encode()
    return hmac.new(key, f"labyard-session:{job_id}".encode(), hashlib.sha256).hexdigest()


def run_dir(job_folder: Path) -> Path:
    """The folder of a session's socket and JupyterLab's own state."""
    return job_folder / "output" / RUN_DIR


def socket_path(job_folder: Path) -> Path:
    """Where the session's JupyterLab listens."""
    return run_dir(job_folder) / SOCKET_NAME


def write_files(
    settings: Settings, job_folder: Path, job_id: int, lab: Path, lab_id: int, *, tcp: bool
) -> None:
    """The session job's folder: `lab/` linking to the lab's folder (relative, so it holds
    where a cluster's nodes mount the data folder elsewhere), the output folder and the
    settings the command reads (readable by the job only); `tcp`: listen on a node's port."""
    job_folder.mkdir(parents=True, exist_ok=True)
    link = job_folder / "lab"
    if link.is_symlink() or link.exists():
        link.unlink()
    target = os.path.relpath(lab.resolve(), job_folder.resolve())
    link.symlink_to(target, target_is_directory=True)
    folder = run_dir(job_folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    config = folder / CONFIG_NAME
    conf = {"token": token(settings, job_id), "base_url": base_url(lab_id)}
    config.write_text(json.dumps(conf | ({"listen": "tcp"} if tcp else {})))
    os.chmod(config, 0o600)


# ------------------------------------------------------------------ talking to it


@dataclass(frozen=True)
class Endpoint:
    """Where a session's JupyterLab answers: a Unix socket path, or a node's host and port."""

    socket: str = ""
    host: str = ""
    port: int = 0

    def url(self, path: str, scheme: str = "http") -> str:
        """The URL of `path` (which starts with '/') on this endpoint."""
        return (
            f"{scheme}://{self.host}:{self.port}{path}"
            if self.host
            else f"{scheme}://localhost{path}"
        )

    def sync_transport(self) -> httpx.HTTPTransport:
        """A transport for blocking clients (no TLS context: plain HTTP)."""
        return httpx.HTTPTransport(uds=self.socket or None, verify=False)

    def async_transport(self) -> httpx.AsyncHTTPTransport:
        """A transport for the proxy's clients."""
        return httpx.AsyncHTTPTransport(uds=self.socket or None, verify=False)


def endpoint(job_folder: Path) -> Endpoint | None:
    """The session's endpoint, or None while JupyterLab has not said where it listens."""
    folder = run_dir(job_folder)
    try:
        address = json.loads((folder / ADDRESS_NAME).read_text())
        return Endpoint(host=str(address["host"]), port=int(address["port"]))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError):
        return None
    sock = folder / SOCKET_NAME
    return Endpoint(socket=connect_path(sock)) if sock.exists() else None


_fd_dirs: dict[str, int] = {}


def connect_path(sock: Path) -> str:
    """A path to connect to `sock` by: itself, or through /proc/self/fd when it is longer
    than a Unix socket address may be (108 bytes; deep data dirs in tests)."""
    text = str(sock)
    if len(text.encode()) < 100:
        return text
    parent = str(sock.parent)
    fd = _fd_dirs.get(parent)
    if fd is None or not os.path.exists(f"/proc/self/fd/{fd}"):
        fd = os.open(parent, os.O_PATH | os.O_DIRECTORY)
        _fd_dirs[parent] = fd
    return f"/proc/self/fd/{fd}/{sock.name}"


def forget_socket(sock: Path) -> None:
    """Close the folder handle `connect_path` kept for a stopped session."""
    fd = _fd_dirs.pop(str(sock.parent), None)
    if fd is not None:
        os.close(fd)


def auth_headers(settings: Settings, job_id: int) -> dict[str, str]:
    """What every request to the session's JupyterLab carries: its token."""
    return {"authorization": f"token {token(settings, job_id)}"}


@dataclass(frozen=True)
class Activity:
    """What JupyterLab says of itself: when it was last used and whether a kernel works."""

    last_activity: datetime
    busy: bool


def activity(settings: Settings, job_folder: Path, job_id: int, lab_id: int) -> Activity | None:
    """The session's last activity (`/api/status`) and whether a kernel is busy, or None
    when JupyterLab does not answer (yet). Asking does not count as activity."""
    found = endpoint(job_folder)
    if found is None:
        return None
    headers = auth_headers(settings, job_id)
    url = found.url(f"{base_url(lab_id)}api")
    transport = found.sync_transport()
    try:
        with httpx.Client(transport=transport, timeout=STATUS_TIMEOUT, headers=headers) as client:
            status = client.get(f"{url}/status")
            kernels = client.get(f"{url}/kernels", params={"no_track_activity": "1"})
            if status.status_code != 200 or kernels.status_code != 200:
                return None
            last = datetime.fromisoformat(status.json()["last_activity"].replace("Z", "+00:00"))
            busy = any(k.get("execution_state") == "busy" for k in kernels.json())
            return Activity(last, busy)
    except (httpx.HTTPError, OSError, ValueError, KeyError):
        return None


def touch(settings: Settings, job_folder: Path, job_id: int, lab_id: int) -> bool:
    """Count as activity now (an API request JupyterLab tracks); False if it did not answer."""
    found = endpoint(job_folder)
    if found is None:
        return False
    url = found.url(f"{base_url(lab_id)}api/contents")
    try:
        with httpx.Client(transport=found.sync_transport(), timeout=STATUS_TIMEOUT) as client:
            headers = auth_headers(settings, job_id)
            answer = client.get(url, params={"content": "0"}, headers=headers)
            return answer.status_code == 200
    except (httpx.HTTPError, OSError):
        return False
