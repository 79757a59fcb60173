"""TensorBoard processes: start one on loopback, tell whether it lives and answers, stop it.

Processes are started with `sys.executable -m tensorboard.main` and an argument list (never a
shell), in their own session so a server restart leaves them running to be adopted. A pid is
trusted only together with the process start time recorded with it, so a later, unrelated
process that reuses the pid is never taken for (or killed as) a TensorBoard.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 5.0
START_TIME_TOLERANCE = 1.0  # seconds between our recorded start time and psutil's
RELOAD_INTERVAL = 5

_children: dict[int, subprocess.Popen[bytes]] = {}  # pid -> process this server started
_children_lock = threading.Lock()


def path_prefix(instance_id: int) -> str:
    """The URL prefix TensorBoard serves under (the proxy forwards paths unchanged)."""
    return f"/tensorboard/{instance_id}"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def link_runs(runs_dir: Path, logdir_spec: dict[str, str]) -> None:
    """Make `runs_dir` hold one link per run, named by the run, to its log dir: TensorBoard
    reading it names each run by its link ("QuickStart · sweep 3 · #2"), where a logdir_spec
    would show "name/." for event files at the top of a log dir."""
    if runs_dir.is_dir():
        shutil.rmtree(runs_dir)
    runs_dir.mkdir(parents=True)
    for name, path in logdir_spec.items():
        (runs_dir / name).symlink_to(path, target_is_directory=True)


def command(instance_id: int, runs_dir: Path, port: int) -> list[str]:
    """The argument list of a TensorBoard serving the runs linked in `runs_dir`."""
    return [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(runs_dir),
        "--load_fast",
        "false",  # the Python loader follows the run links; as with the logdir_spec before
        "--host",
        HOST,
        "--port",
        str(port),
        "--path_prefix",
        path_prefix(instance_id),
        "--reload_interval",
        str(RELOAD_INTERVAL),
    ]


def _child_environment() -> dict[str, str]:
    """The server's environment without Labyard's own settings (secrets stay with us)."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("LABYARD_")}


def spawn(args: list[str], log_path: Path) -> tuple[int, datetime | None]:
    """Start the process with output into `log_path`; its pid and OS start time."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed program, argument list, no shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_environment(),
            start_new_session=True,
            close_fds=True,
        )
    with _children_lock:
        _children[proc.pid] = proc
    return proc.pid, start_time(proc.pid)


def start_time(pid: int) -> datetime | None:
    """When the OS started process `pid`, or None if there is none."""
    try:
        return datetime.fromtimestamp(psutil.Process(pid).create_time(), UTC)
    except psutil.Error:
        return None


def _reap_child(pid: int) -> None:
    """Collect the exit status of our own child if it ended (no zombie left behind)."""
    with _children_lock:
        proc = _children.get(pid)
        if proc is not None and proc.poll() is not None:
            del _children[pid]


def is_alive(pid: int | None, started_at: datetime | None) -> bool:
    """True if `pid` is still the process that started at `started_at`."""
    if pid is None or started_at is None:
        return False
    _reap_child(pid)
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except psutil.Error:
        return False
    return abs(created - started_at.timestamp()) <= START_TIME_TOLERANCE


def is_our_child(pid: int | None) -> bool:
    """True if this server process started `pid` (and has not collected it yet)."""
    with _children_lock:
        return pid is not None and pid in _children


def terminate(pid: int | None, started_at: datetime | None) -> None:
    """Stop the process (SIGTERM, then SIGKILL after a grace period) if it is still ours."""
    if pid is None or not is_alive(pid, started_at):
        return
    try:
        process = psutil.Process(pid)
        process.terminate()
        try:
            process.wait(STOP_GRACE_SECONDS)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(STOP_GRACE_SECONDS)
    except psutil.Error:
        pass
    _reap_child(pid)


def answers(port: int | None, instance_id: int, timeout: float = 1.0) -> bool:
    """True once the TensorBoard on `port` serves its data API."""
    if port is None:
        return False
    url = f"http://{HOST}:{port}{path_prefix(instance_id)}/data/environment"
    try:
        # plain HTTP on loopback: no TLS context to build (slow), no proxy variables to obey
        return httpx.get(url, timeout=timeout, verify=False, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def log_tail(log_path: Path, max_bytes: int = 2000) -> str:
    """The end of a process's output (why it exited), or ''."""
    try:
        with log_path.open("rb") as fh:
            fh.seek(max(0, log_path.stat().st_size - max_bytes))
            return fh.read().decode(errors="replace").strip()
    except OSError:
        return ""
