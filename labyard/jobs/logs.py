"""Job logs: one file per job (`<job>/job.log`), every line prefixed with its UTC time.

Design (survives `kill -9` of the server): the server never sits between a job and its log.

- local executor: the job runs under a tiny wrapper, `python -m labyard.jobs.logs`, that is
  the session leader of the job's process group and the subreaper of its tree (see
  labyard.jobs.proctree). It reads the job's stdout+stderr from a pipe, writes
  `<RFC 3339 time> <line>` to job.log (capped). It records the process's own times: the
  start record `<job>/started_at` (the time it spawned the job) and, at the end, the exit
  record `<job>/exit_code` (`<status> <time the main process ended>`), so a job's times are
  the process's, not the scheduler's ticks, even when it ended while the server was down.
  It stays the server's user; the job's processes join the job's cgroup and drop to the
  job user (labyard.jobs.isolation) before they exec. The wrapper does not depend on the
  server, so a killed server leaves the job, its log and its exit status intact. stderr
  shares stdout's pipe and the job's environment has PYTHONUNBUFFERED=1, so lines keep
  the order they were printed in.
- docker executor: Docker keeps the container's output; a follower thread in the server
  copies `docker logs --timestamps` (the same line format) into job.log, rewriting the file
  from the start whenever it (re)attaches, so a restart yields the same bytes again. The
  command runs with stderr joined to stdout (one stream, in order), and the container's
  `State.StartedAt`/`FinishedAt` are the job's times.

The scheduler reads job.log from the job's `log_parsed_offset` (kept in the database with
the metric points it produced, in one transaction) so metrics are ingested exactly once.
A log is capped at `log_max_bytes`; one note line says where it was cut.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from labyard.jobs import proctree

LOG_NAME = "job.log"
EXIT_NAME = "exit_code"
START_NAME = "started_at"
MAX_LINE = 64 * 1024
TRUNCATED_NOTE = (
    b"[labyard] log truncated: size limit of %d bytes reached; further output dropped\n"
)


def timestamp() -> bytes:
    """The current UTC time as the log's line prefix."""
    return format_stamp(datetime.now(UTC))


class LogWriter:
    """Appends timestamped lines to a log file, up to a size cap (then one note line)."""

    def __init__(self, path: Path, max_bytes: int, *, truncate: bool = False) -> None:
        self.max_bytes = max_bytes
        self.file: BinaryIO = open(path, "wb" if truncate else "ab")  # noqa: SIM115
        self.size = self.file.tell()
        self.cut = False

    def write_line(self, line: bytes, stamp: bytes | None = None) -> None:
        """Write one line (its newline added if missing), prefixed with `stamp` or now."""
        if self.cut:
            return
        if not line.endswith(b"\n"):
            line += b"\n"
        record = (stamp or timestamp()) + b" " + line
        if self.size + len(record) > self.max_bytes:
            note = (stamp or timestamp()) + b" " + TRUNCATED_NOTE % self.max_bytes
            self.file.write(note)
            self.size += len(note)
            self.cut = True
        else:
            self.file.write(record)
            self.size += len(record)
        self.file.flush()

    def close(self) -> None:
        """Close the file."""
        self.file.close()


MAX_LOG_OFFSET = 1 << 40  # past any log: a larger offset (a client's) reads nothing


def read_log(path: Path, offset: int = 0, limit: int = 1024 * 1024) -> tuple[bytes, int]:
    """Up to `limit` bytes of the log from `offset`, and the offset after them."""
    if offset > MAX_LOG_OFFSET:  # seeking there would overflow or fail (EINVAL)
        return b"", offset
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, offset))
            data = fh.read(limit)
    except FileNotFoundError:
        return b"", offset
    return data, max(0, offset) + len(data)


def complete_lines(
    path: Path, offset: int, limit: int = 4 * 1024 * 1024
) -> tuple[list[bytes], int]:
    """The whole lines of the log after `offset` (up to `limit` bytes), and the new offset."""
    data, _ = read_log(path, offset, limit)
    end = data.rfind(b"\n")
    if end < 0:
        if len(data) >= limit:  # one absurdly long line: skip it
            return [], offset + len(data)
        return [], offset
    chunk = data[: end + 1]
    return chunk.splitlines(), offset + len(chunk)


def split_stamp(line: bytes) -> tuple[datetime | None, str]:
    """A log line's timestamp (if it has a valid one) and its text."""
    head, _, rest = line.partition(b" ")
    stamp = parse_stamp(head)
    if stamp is None:
        return None, line.decode("utf-8", errors="replace")
    return stamp, rest.decode("utf-8", errors="replace")


def parse_stamp(head: bytes) -> datetime | None:
    """An RFC 3339 UTC time as written by us or Docker (any fraction digits), else None."""
    try:
        text = head.decode("ascii")
        if not text.endswith("Z") or len(text) > 40:
            return None
        whole, _, frac = text[:-1].partition(".")
        if frac and not frac.isdigit():
            return None
        stamp = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
        return stamp.replace(microsecond=int(frac[:6].ljust(6, "0")), tzinfo=UTC)
    except (UnicodeDecodeError, ValueError):
        return None


def format_stamp(stamp: datetime) -> bytes:
    """A time in the log's prefix format."""
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()


@dataclass(frozen=True)
class ExitRecord:
    """What the wrapper wrote when the job's main process ended."""

    code: int
    at: datetime | None  # None: written by a wrapper that recorded no time


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_start(job_dir: Path) -> datetime | None:
    """When the wrapper spawned the job (its start record), if it has written it."""
    try:
        return parse_stamp((job_dir / START_NAME).read_bytes().strip())
    except OSError:
        return None


def read_exit(job_dir: Path) -> ExitRecord | None:
    """The wrapper's exit record (`<status> <time>`, or a bare status), if written."""
    try:
        code, _, at = (job_dir / EXIT_NAME).read_text().strip().partition(" ")
        return ExitRecord(int(code), parse_stamp(at.encode()) if at else None)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- the wrapper


@dataclass(frozen=True)
class RunAs:
    """The unprivileged identity the job's processes take (the wrapper stays as it is)."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def encode(self) -> str:
        """`uid:gid:g1,g2` for the wrapper's command line."""
        return f"{self.uid}:{self.gid}:{','.join(map(str, self.groups))}"

    @classmethod
    def decode(cls, text: str) -> RunAs:
        """The inverse of `encode`."""
        uid, gid, groups = text.split(":")
        return cls(int(uid), int(gid), tuple(int(g) for g in groups.split(",") if g))


def _enter_job(cgroup: Path | None, run_as: RunAs | None) -> None:
    """In the job's first process, before exec: default SIGTERM, own cgroup, drop privileges."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if cgroup is not None:
        with contextlib.suppress(OSError):  # the subreaper still holds the tree
            proctree.join_cgroup(cgroup)
    if run_as is not None:
        os.setgroups(list(run_as.groups))
        os.setgid(run_as.gid)
        os.setuid(run_as.uid)


def _pump(stream: BinaryIO, writer: LogWriter) -> None:
    while line := stream.readline(MAX_LINE):
        writer.write_line(line)


def _wait_main(pid: int) -> int:
    """Wait for the job's main process, reaping re-parented orphans meanwhile; 128+N if killed."""
    while True:
        done, status = os.wait()
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def run_wrapped(
    job_dir: Path,
    max_bytes: int,
    argv: list[str],
    *,
    cgroup: Path | None = None,
    run_as: RunAs | None = None,
) -> int:
    """Run argv with its output timestamped into job.log; record its exit status.

    The job's main process ending ends the job: whatever it left running (daemons, `setsid`
    children) is killed, as a container's would be, and the log is complete after that."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stop signals the job's processes; we drain
    proctree.become_subreaper()
    writer = LogWriter(job_dir / LOG_NAME, max_bytes)
    started = timestamp()
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: _enter_job(cgroup, run_as),  # noqa: PLW1509 - single-threaded here
        )
    except (OSError, subprocess.SubprocessError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        writer.write_line(f"[labyard] cannot start {argv[0]!r}: {why}".encode())
        code, ended = 127, timestamp()
    else:
        _write_atomic(job_dir / START_NAME, started.decode())
        assert child.stdout is not None
        reader = threading.Thread(target=_pump, args=(child.stdout, writer), daemon=True)
        reader.start()
        code = _wait_main(child.pid)
        ended = timestamp()
        child.returncode = code
        proctree.end_tree(cgroup)
        reader.join(timeout=30)  # every writer of the pipe is gone: EOF comes at once
    if cgroup is not None:
        proctree.remove_cgroup(cgroup)
    writer.close()
    _write_atomic(job_dir / EXIT_NAME, f"{code} {ended.decode()}")
    return code


def main() -> int:
    """`python -m labyard.jobs.logs JOB_DIR MAX_BYTES [--cgroup P] [--as U:G:GS] -- ARGV...`"""
    job_dir, max_bytes, *rest = sys.argv[1:]
    options: dict[str, str] = {}
    while rest and rest[0] in ("--cgroup", "--as") and len(rest) > 1:
        options[rest[0]] = rest[1]
        rest = rest[2:]
    if not rest or rest[0] != "--" or len(rest) < 2:
        print(
            "usage: python -m labyard.jobs.logs JOB_DIR MAX_BYTES [--cgroup PATH] "
            "[--as UID:GID:GROUPS] -- ARGV...",
            file=sys.stderr,
        )
        return 2
    return run_wrapped(
        Path(job_dir),
        int(max_bytes),
        rest[1:],
        cgroup=Path(options["--cgroup"]) if "--cgroup" in options else None,
        run_as=RunAs.decode(options["--as"]) if "--as" in options else None,
    )


if __name__ == "__main__":
    raise SystemExit(main())
