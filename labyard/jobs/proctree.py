"""A local job's whole process tree: found, signalled and ended, `setsid` escapees included.

Two mechanisms, both always armed when available:

- a cgroup v2 of its own per job (`labyard-job-*` under the server's cgroup), when cgroup v2
  is mounted and writable (root, or a delegated subtree). The job's first process joins it
  before it runs anything, so every descendant is in it whatever it does with sessions or
  process groups, and `cgroup.kill` ends them all in one write. Its path is kept in
  `<job>/cgroup`, so a restarted server still finds it.
- the log wrapper is a child subreaper (PR_SET_CHILD_SUBREAPER): orphaned descendants are
  re-parented to it instead of init, so "the wrapper's descendants" is the job's whole tree.

Signals go to the job's processes, never to the wrapper, which records the exit status.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import time
from pathlib import Path

import psutil

CGROUP_FILE = "cgroup"
CGROUP_PREFIX = "labyard-job-"
PR_SET_CHILD_SUBREAPER = 36


def _cgroup2_mount() -> Path | None:
    """Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `.../unified` on hybrid hosts)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, _, fstype = line.partition(" - ")
        if fstype.split(" ", 1)[0] == "cgroup2":
            return Path(line.split(" ")[4])
    return None


def _own_cgroup() -> str | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:].strip()
    except OSError:
        pass
    return None


def create_cgroup(job_id: int) -> Path | None:
    """A fresh cgroup for one job attempt beside the server's, or None where cgroups cannot."""
    mount, own = _cgroup2_mount(), _own_cgroup()
    if mount is None or own is None:
        return None
    parent = mount / own.lstrip("/")
    path = parent / f"{CGROUP_PREFIX}{job_id}-{secrets.token_hex(4)}"
    try:
        path.mkdir()
    except OSError:
        return None
    if not (path / "cgroup.kill").exists() or not os.access(path / "cgroup.procs", os.W_OK):
        remove_cgroup(path)  # kernels before 5.14 have no cgroup.kill: use the fallback
        return None
    return path


def read_cgroup(job_dir: Path) -> Path | None:
    """The job's cgroup as recorded in its folder, if it is one of ours."""
    try:
        path = Path((job_dir / CGROUP_FILE).read_text().strip())
    except OSError:
        return None
    mount = _cgroup2_mount()
    if mount is None or not path.name.startswith(CGROUP_PREFIX) or ".." in path.parts:
        return None
    return path if path.is_relative_to(mount) and path.is_dir() else None


def join_cgroup(path: Path) -> None:
    """Move the calling process into `path` (run in the job's process before exec)."""
    with open(path / "cgroup.procs", "w") as fh:
        fh.write(str(os.getpid()))


def remove_cgroup(path: Path) -> None:
    """Remove an empty job cgroup (a no-op when it is gone or still busy)."""
    with contextlib.suppress(OSError):
        path.rmdir()


def cgroup_pids(path: Path) -> list[int]:
    """The processes in a cgroup (empty when it is gone)."""
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of `pid` (not `pid` itself)."""
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.is_running()]
    except psutil.Error:
        return []


def signal_tree(wrapper_pid: int | None, cgroup: Path | None, sig: int) -> int:
    """Send `sig` to every process of the job (not the wrapper); return how many got it."""
    targets: set[int] = set()
    if cgroup is not None:
        if sig == signal.SIGKILL:
            with contextlib.suppress(OSError):
                (cgroup / "cgroup.kill").write_text("1")
        targets.update(cgroup_pids(cgroup))
    if wrapper_pid is not None:
        targets.update(p.pid for p in descendants(wrapper_pid))
    targets.discard(wrapper_pid or -1)
    targets.discard(os.getpid())
    sent = 0
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            sent += 1
    return sent


def end_tree(cgroup: Path | None, *, timeout: float = 10.0) -> None:
    """In the wrapper, once the job's main process ended: kill and reap what it left behind."""
    deadline = time.monotonic() + timeout
    me = os.getpid()
    while True:
        left = signal_tree(me, cgroup, signal.SIGKILL)
        _reap()
        if left == 0 and not (cgroup and cgroup_pids(cgroup)) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    if cgroup is not None:
        remove_cgroup(cgroup)


def _reap() -> None:
    """Collect every exited child (orphans re-parented to us included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
