"""Who a local job runs as, and what it may read: the server's secrets stay the server's.

When the server runs as root, local jobs run as an unprivileged user (setting `job_user`,
created by `labyard serve` when missing). That user can reach only the job's own folder and
the datasets attached to it, through numeric groups that need no /etc/group entry:

- the data folder and `jobs/` become 0711 (enter, not list); `secret_key`, the database and
  everything else stay 0600/0700 root's, so the job cannot read them;
- `jobs/<id>` is root-owned 0710 with group JOB_GID_BASE + id, which only this job holds;
  `lab/`, `output/` and `home/` inside it belong to the job user; `job.log`, `exit_code`
  and `cgroup` stay root's, written by the log wrapper;
- each attached dataset's tree gets group DATASET_GID_BASE + a hash of its folder (g+rX)
  and its parents 0711, so a job reads the datasets it was given and no other project's.

Without root (or with `job_user` empty) jobs run as the server's own user and can read all
of the above: the local executor is then for one trusted user; groups must use Docker.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labyard.config import Settings

JOB_GID_BASE = 0x60000000  # + job id: the group that may enter one job's folder
DATASET_GID_BASE = 0x70000000  # + hash of its folder: the group that may read one dataset
DATASET_GIDS = 0x7FFFFFFF - DATASET_GID_BASE  # Docker takes gids up to 2**31 - 1 only
TRUSTED_ONLY_WARNING = (
    "Local jobs run as the server's own user: a job can read the server's secret key, its "
    "database and every project's files. The local executor is for one trusted user; a group "
    "must use the Docker executor (LABYARD_EXECUTOR=docker) or a cluster."
)


@dataclass(frozen=True)
class JobIdentity:
    """The unprivileged user a local job runs as."""

    name: str
    uid: int
    gid: int

    def groups_for(self, job_id: int, dataset_gids: list[int]) -> list[int]:
        """Supplementary groups of one job: its folder's group and its datasets'."""
        return [JOB_GID_BASE + job_id, *dataset_gids]


def job_python(settings: Settings) -> str:
    """The interpreter local jobs run as `python`: the setting, else the server's own."""
    return settings.job_python or sys.executable


def job_identity(settings: Settings) -> JobIdentity | None:
    """The job user, or None when jobs run as the server's user (not root, or disabled).

    Raises LookupError when the server is root and the configured user does not exist:
    jobs must not silently fall back to running as root. When the user exists but cannot
    start this interpreter (a venv under /root), jobs run as the server's user and
    isolation_warnings says so on `labyard serve` and the admin page."""
    if os.geteuid() != 0 or not settings.job_user:
        return None
    entry = pwd.getpwnam(settings.job_user)  # KeyError is a LookupError
    if entry.pw_uid == 0:
        raise LookupError(f"the job user {settings.job_user!r} is root")
    if not _can_run_python(job_python(settings), entry.pw_uid, entry.pw_gid):
        return None  # jobs could not even start; isolation_warnings says why, loudly
    return JobIdentity(settings.job_user, entry.pw_uid, entry.pw_gid)


def ensure_job_user(settings: Settings) -> str | None:
    """Create the job user (a system user, no login) if the server is root and it is missing.

    Returns a line saying what was done or what is wrong, or None when nothing was needed."""
    if os.geteuid() != 0 or not settings.job_user or settings.executor != "local":
        return None  # Docker and Slurm jobs run as their own uids
    try:
        pwd.getpwnam(settings.job_user)
        return None
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        return f"Cannot create the job user {settings.job_user!r}: no useradd on this machine."
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    done = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            shell,
            settings.job_user,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"Cannot create the job user {settings.job_user!r}: {done.stderr.strip()}"
    return f"Created the system user {settings.job_user!r}; local jobs run as it."


def isolation_warnings(settings: Settings) -> list[str]:
    """What an admin must know about local jobs' isolation (empty when all is well)."""
    if settings.executor != "local":
        return []
    try:
        identity = job_identity(settings)
    except LookupError as exc:
        return [f"Local jobs cannot start: {exc}. `labyard serve` creates the job user."]
    if identity is None and os.geteuid() == 0 and settings.job_user:
        return [
            f"The job user {settings.job_user!r} cannot run {job_python(settings)}, "
            "so local jobs run as root. Install Labyard where every user can read it (e.g. "
            "/opt) to isolate them. " + TRUSTED_ONLY_WARNING
        ]
    return [TRUSTED_ONLY_WARNING] if identity is None else []


@functools.cache
def _can_run_python(python: str, uid: int, gid: int) -> bool:
    """Whether `uid` can start `python` (tried once per process)."""
    try:
        probe = subprocess.run(
            [python, "-c", ""],
            user=uid,
            group=gid,
            extra_groups=[],
            capture_output=True,
            check=False,
            cwd="/",
        )
    except OSError:  # not found, or not executable by uid
        return False
    return probe.returncode == 0


def dataset_gid(host_path: Path) -> int:
    """The group that may read one dataset folder (a hash of its path, 268 million values)."""
    digest = hashlib.blake2b(str(host_path).encode(), digest_size=8).digest()
    return DATASET_GID_BASE + int.from_bytes(digest) % DATASET_GIDS


def _traversable(target: Path, root: Path) -> None:
    """Let others enter (not list) `root` and every folder between it and `target`."""
    here = root
    folders = [root]
    for part in target.relative_to(root).parts[:-1]:
        here = here / part
        folders.append(here)
    for folder in folders:
        mode = stat.S_IMODE(folder.stat().st_mode)
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _group_readable(root: Path, gid: int, *, writable: bool = False) -> None:
    """Give `gid` read (or read and write) access to a tree (no links followed), leaving
    others out; writable folders are set-group-id, so what is made in them keeps `gid`."""

    def grant(path: str) -> None:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return
        mode = stat.S_IMODE(st.st_mode)
        folder = stat.S_ISDIR(st.st_mode)
        want = stat.S_IRGRP | (stat.S_IXGRP if folder else 0)
        if writable:
            want |= stat.S_IWGRP | (stat.S_ISGID if folder else 0)
        if st.st_gid != gid:
            os.chown(path, -1, gid, follow_symlinks=False)
        if mode & want != want or st.st_gid != gid:  # chown cleared set-id bits anyway
            os.chmod(path, (mode & 0o777) | want)

    grant(str(root))
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            grant(os.path.join(folder, name))


def grant_job_files(
    settings: Settings,
    identity: JobIdentity,
    job_id: int,
    job_dir: Path,
    datasets: list[Path],
) -> list[int]:
    """Open a job's own folder and its datasets to it (see the module doc); its groups."""
    data = settings.data_dir
    _traversable(job_dir, data)
    folder_gid = JOB_GID_BASE + job_id
    os.chown(job_dir, 0, folder_gid)
    job_dir.chmod(0o710)
    (job_dir / "home").mkdir(exist_ok=True)
    lab = job_dir / "lab"
    if lab.is_symlink():  # a lab session works in the lab's own folder: open it to this job
        _open_lab_folder(lab.resolve(), data, folder_gid)
    for mine in ("output", "home") if lab.is_symlink() else ("lab", "output", "home"):
        _chown_tree(job_dir / mine, identity.uid, identity.gid)
    for inputs in (job_dir / "input", job_dir / "weights"):  # links to read-only folders
        if inputs.is_dir():
            os.chown(inputs, 0, folder_gid)
            inputs.chmod(0o750)
    gids = []
    for host_path in datasets:
        if host_path.is_relative_to(data):
            _traversable(host_path, data)
        gids.append(grant_dataset(host_path))
    return identity.groups_for(job_id, gids)


def _open_lab_folder(folder: Path, data: Path, gid: int) -> None:
    """Let the group `gid` (one job's) enter the lab's folder and read and write its files.

    The folder's parents only become enterable; files the session writes belong to the job
    user, in folders only this job's group may enter. Files the server writes meanwhile are
    private (umask 077) until the next session start opens the tree again."""
    if not folder.is_relative_to(data) or not folder.is_dir():
        raise OSError(f"the lab folder {folder} is not under the data folder")
    _traversable(folder, data)
    _group_readable(folder, gid, writable=True)


def grant_dataset(host_path: Path) -> int:
    """Let the group of one dataset read its tree (files are 0600/0700 under umask 077);
    the group, which a job (local or in a container) is given to read it."""
    gid = dataset_gid(host_path)
    _group_readable(host_path, gid)
    return gid
