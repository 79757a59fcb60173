"""Slurm's commands, run as argv lists (never a shell), and their output parsed.

`squeue` gives every job's state in one call (the executor's snapshot per scheduler round);
`scontrol show job -d` the GPUs a job got and, with accounting off, its exit code; `sacct`
the exit code when accounting is on; `scontrol show node -d` the nodes. Slurm prints times
in the controller's local time without a zone; they are read as this machine's local time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from labyard.config import Settings
from labyard.jobs.executors.base import ExecutorError

COMMAND_TIMEOUT = 60.0
QUEUE_FIELDS = (
    "JobID",
    "Name",
    "State",
    "Reason",
    "NodeList",
    "PriorityLong",
    "RestartCnt",
    "SubmitTime",
    "StartTime",
    "EndTime",
)
WAITING_STATES = {
    "PENDING",
    "CONFIGURING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESV_DEL_HOLD",
}
RUNNING_STATES = {
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "STOPPED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
}
_KEY_RE = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_:/]*)=")
_GRES_IDX_RE = re.compile(r"gpu(?::[^:(\s]+)?:\d+\(IDX:([0-9,\-]+)\)")


@dataclass(frozen=True)
class SlurmJob:
    """One line of squeue (or scontrol show job)."""

    id: str
    name: str
    state: str
    reason: str
    nodes: str
    priority: int
    restarts: int
    submitted: datetime | None
    started: datetime | None
    ended: datetime | None

    @property
    def waiting(self) -> bool:
        """Not started yet (pending, or requeued and pending again)."""
        return self.state in WAITING_STATES

    @property
    def running(self) -> bool:
        """Started and not finished."""
        return self.state in RUNNING_STATES


def slurm_time(text: str) -> datetime | None:
    """A Slurm time (`2026-12-06T01:39:15`, local) in UTC; None for N/A, Unknown, None."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S").astimezone(UTC)
    except ValueError:
        return None


def exit_status(text: str) -> int | None:
    """`ExitCode=N:S` as one code: N, or 128+S when a signal ended it (S up to 64)."""
    code, _, sig = text.strip().partition(":")
    if not code.isdigit():
        return None
    if sig.isdigit() and 0 < int(sig) <= 64:
        return 128 + int(sig)
    return int(code)


def key_values(line: str) -> list[tuple[str, str]]:
    """The `Key=value` pairs of a `scontrol show ... -o` line, in order (values may hold
    spaces: each runs up to the next ` Key=`)."""
    matches = list(_KEY_RE.finditer(line))
    pairs = []
    for match, after in zip(matches, [*matches[1:], None], strict=True):
        end = after.start() if after is not None else len(line)
        pairs.append((match.group(1), line[match.end() : end].strip()))
    return pairs


def expand_indices(text: str) -> tuple[str, ...]:
    """`0,2-3` -> ('0', '2', '3')."""
    out: list[str] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        if low.isdigit() and high.isdigit():
            out += [str(i) for i in range(int(low), int(high) + 1)]
        elif low.isdigit():
            out.append(low)
    return tuple(out)


def gpu_indices(pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    """The GPUs a running job holds, from `scontrol show job -d`'s `GRES=gpu:2(IDX:0-1)`."""
    found: list[str] = []
    for key, value in pairs:
        if key == "GRES":
            for match in _GRES_IDX_RE.finditer(value):
                found += expand_indices(match.group(1))
    return tuple(found)


def expand_hostlist(text: str) -> list[str]:
    """`lynode[1-2,5],gpu7` -> every node name (Slurm's compressed host lists)."""
    names: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", text):
        match = re.fullmatch(r"(.*)\[([^\]]*)\](.*)", part)
        if match is None:
            names.append(part)
            continue
        head, ranges, tail = match.groups()
        for item in ranges.split(","):
            low, _, high = item.partition("-")
            if high:
                width = len(low)
                names += [f"{head}{i:0{width}d}{tail}" for i in range(int(low), int(high) + 1)]
            else:
                names.append(f"{head}{low}{tail}")
    return [name for name in names if name]


def _number(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


class SlurmCommands:
    """Runs Slurm's commands with the settings' folder and slurm.conf."""

    def __init__(self, settings: Settings) -> None:
        self.bin_dir = settings.slurm_bin_dir
        self.conf = settings.slurm_conf

    def path(self, command: str) -> str:
        """The command's full path (ExecutorError when it is not installed)."""
        if self.bin_dir:
            found = Path(self.bin_dir) / command
            if os.access(found, os.X_OK):
                return str(found)
        else:
            which = shutil.which(command)
            if which is not None:
                return which
        where = self.bin_dir or "PATH"
        raise ExecutorError(
            f"{command} not found on {where}: install Slurm's client commands "
            "(Debian: slurm-client) or set LABYARD_SLURM_BIN_DIR"
        )

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with SLURM_CONF when set, and without
        the SLURM_* and SBATCH_* variables of a Slurm job this server might itself run in."""
        env = {
            k: v
            for k, v in (os.environ if base is None else base).items()
            if not k.startswith(("SLURM_", "SBATCH_", "SQUEUE_", "SACCT_", "SINFO_"))
        }
        if self.conf:
            env["SLURM_CONF"] = self.conf
        elif "SLURM_CONF" in os.environ:
            env["SLURM_CONF"] = os.environ["SLURM_CONF"]
        return env

    def run(
        self,
        command: str,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run `command args...`; ExecutorError with Slurm's message when it fails (`check`)."""
        argv = [self.path(command), *args]
        try:
            proc = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                env=self.environment(env),
                timeout=COMMAND_TIMEOUT,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExecutorError(f"{command} did not answer: {exc}") from exc
        if check and proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            said = lines[-1] if lines else f"exit {proc.returncode}"
            raise ExecutorError(said if said.startswith(f"{command}:") else f"{command}: {said}")
        return proc

    def queue(self, *, name: str | None = None) -> list[SlurmJob]:
        """Every job slurmctld knows (finished ones too, for MinJobAge), or those named `name`."""
        fields = ",".join(f"{field}:|" for field in QUEUE_FIELDS)
        args = ["--noheader", "--states=all", f"--Format={fields}"]
        if name is not None:
            args.append(f"--name={name}")
        out = self.run("squeue", *args).stdout
        jobs = []
        for line in out.splitlines():
            parts = [part.strip() for part in line.split("|")]
            if len(parts) < len(QUEUE_FIELDS) or not parts[0]:
                continue
            jid, jname, state, reason, nodes, prio, restarts, sub, start, end = parts[:10]
            jobs.append(
                SlurmJob(
                    id=jid,
                    name=jname,
                    state=state.split()[0] if state else "",
                    reason="" if reason == "None" else reason,
                    nodes=nodes,
                    priority=_number(prio),
                    restarts=_number(restarts),
                    submitted=slurm_time(sub),
                    started=slurm_time(start),
                    ended=slurm_time(end),
                )
            )
        return jobs

    def show_job(self, job_id: str) -> list[tuple[str, str]] | None:
        """`scontrol show job -d -o ID` as key/value pairs; None when Slurm forgot the job."""
        proc = self.run("scontrol", "show", "job", "-d", "-o", job_id, check=False)
        if proc.returncode != 0 or "JobId=" not in proc.stdout:
            if "Invalid job id" in proc.stderr or proc.returncode == 0:
                return None
            raise ExecutorError(f"scontrol: {proc.stderr.strip()}")
        return key_values(proc.stdout.strip().splitlines()[0])

    def accounting(self, job_id: str) -> tuple[str, int | None] | None:
        """(state, exit code) from sacct; None when accounting is off or has no record. The
        state is the job's; the code is its batch step's (the script's own exit: a job
        cancelled by a signal says 0:0 for the job but 0:9 for its batch step), else the
        job's."""
        proc = self.run(
            "sacct", "--noheader", "--parsable2", f"--jobs={job_id}",
            "--format=JobID,State,ExitCode", check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            return None
        found: dict[str, tuple[str, str]] = {}
        for line in proc.stdout.splitlines():
            jid, _, rest = line.partition("|")
            state, _, code = rest.partition("|")
            found.setdefault(jid, (state, code))
        if job_id not in found:
            return None
        state, code = found[job_id]
        batch = found.get(f"{job_id}.batch")
        return state.split()[0] if state else "", exit_status(batch[1] if batch else code)

    def nodes(self) -> list[list[tuple[str, str]]]:
        """`scontrol show node -d -o`: every node's key/value pairs."""
        out = self.run("scontrol", "show", "node", "-d", "-o").stdout
        return [key_values(line) for line in out.splitlines() if line.startswith("NodeName=")]


def from_show_job(pairs: list[tuple[str, str]]) -> SlurmJob:
    """A SlurmJob from `scontrol show job` (when squeue no longer lists it)."""
    values = dict(pairs)
    return SlurmJob(
        id=values.get("JobId", ""),
        name=values.get("JobName", ""),
        state=values.get("JobState", ""),
        reason="" if values.get("Reason") == "None" else values.get("Reason", ""),
        nodes="" if values.get("NodeList") == "(null)" else values.get("NodeList", ""),
        priority=_number(values.get("Priority", "0")),
        restarts=_number(values.get("Restarts", "0")),
        submitted=slurm_time(values.get("SubmitTime", "")),
        started=slurm_time(values.get("StartTime", "")),
        ended=slurm_time(values.get("EndTime", "")),
    )
