"""The Slurm executor: each job attempt is one Slurm batch job; Slurm places it.

Submission (`sbatch`, an argv list): the flavor's size as `--gres=gpu:N`, `--cpus-per-task`
and `--mem` on one node, its partition/account/QOS (else the `slurm_partition` setting, else
the cluster's default), `--requeue` so a node failure reruns it. The batch script is
constant text (labyard.jobs.slurm_batch); the job's argv goes in a JSON file in
its folder, so no user value reaches a shell or the script. sbatch exports the job
contract's environment (the server's minus LABYARD_*, as for local jobs) with the paths as
the nodes see them (`slurm_shared_dir`); Slurm sets CUDA_VISIBLE_DEVICES. The job's log,
start and exit records are written on the shared folder by the local executor's wrapper.

Identity: the Slurm job name is `labyard-<installation>-<job id>-<attempt>` and its comment
says the same in words; before submitting, that name is looked up in squeue's answer (taken
every round, and at adoption before anything is submitted), so after a crash between sbatch
and the database nothing is submitted twice, and a `starting` job is found again after a
restart. The external id is the Slurm job id.

Following: `refresh` reads every job in one squeue call per scheduler round; `poll` answers
from it: waiting (PENDING/Resources, its place among the cluster's pending jobs), running
(node; GPUs from `scontrol show job -d` once per run), or ended: the exit code from the
wrapper's record, else sacct (the batch step's), else scontrol (accounting off); TIMEOUT,
OUT_OF_MEMORY, NODE_FAIL ... become the reason (OUT_OF_MEMORY also when slurmstepd noted in
the job's Slurm output that OverMemoryKill ended it: no cgroup limits, Slurm says FAILED).
A requeued job (Slurm's restart count) is the next attempt (labyard.jobs.placement records
the ended one). A `starting` job with no Slurm id and no Slurm job of its name after a
restart was never submitted: the scheduler queues it again.
Stop: `scancel --signal=TERM --full` (the job's processes; the wrapper records the exit),
then `scancel --signal=KILL --full` and `scancel` once the grace period is over.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from labyard.config import Settings
from labyard.jobs import isolation
from labyard.jobs.executors.base import (
    LOST,
    DatasetMount,
    Executor,
    ExecutorError,
    JobState,
    LaunchSpec,
    NodeInfo,
    Placement,
    instance_id,
)
from labyard.jobs.executors.local import job_environment, link_datasets
from labyard.jobs.executors.slurmctl import (
    SlurmCommands,
    SlurmJob,
    exit_status,
    expand_hostlist,
    from_show_job,
    gpu_indices,
)
from labyard.jobs.logs import EXIT_NAME, START_NAME, read_exit, read_start
from labyard.jobs.slurm_batch import (
    LAUNCH_FILE,
    PLACED_FILE,
    PROBE_ANSWER,
    PROBE_REQUEST,
    script,
)

BATCH_SCRIPT = "labyard.jobs.slurm_batch:main"
PROBE_SCRIPT = "labyard.jobs.slurm_batch:probe"
END_REASONS = {
    "TIMEOUT": "TIMEOUT: Slurm ended the job at its time limit",
    "OUT_OF_MEMORY": "OUT_OF_MEMORY: the job used more memory than its flavor gives",
    "NODE_FAIL": "NODE_FAIL: the job's node failed",
    "PREEMPTED": "PREEMPTED: Slurm preempted the job",
    "BOOT_FAIL": "BOOT_FAIL: the job's node could not boot",
    "DEADLINE": "DEADLINE: the job's deadline passed",
    "CANCELLED": "CANCELLED: cancelled in Slurm (not by Labyard)",
}
SLURM_OUT = "slurm/slurm.out"  # the batch script's own output (Slurm's notes about the job)
# slurmstepd's note when jobacct_gather's OverMemoryKill ends a job (no cgroup memory limit:
# Slurm then says FAILED or CANCELLED, not OUT_OF_MEMORY)
MEMORY_KILL_NOTE = b"Exceeded job memory limit"


class SlurmExecutor(Executor):
    """Jobs as Slurm batch jobs."""

    name = "slurm"
    places_jobs = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.slurm = SlurmCommands(settings)
        self.instance = instance_id(settings)
        self.shared = Path(settings.slurm_shared_dir) if settings.slurm_shared_dir else None
        self._jobs: dict[str, SlurmJob] = {}  # the last squeue, by Slurm id
        self._names: dict[str, str] = {}  # job name -> Slurm id (newest)
        self._positions: dict[str, int] = {}  # Slurm id -> place among pending jobs
        self._gpus: dict[tuple[str, int], tuple[str, ...]] = {}  # (id, restarts) -> GPUs
        self._dirs: dict[int, Path] = {}
        self._refreshed = False  # a squeue snapshot was taken (`refresh`)

    # ------------------------------------------------------------------ names and paths

    def job_name(self, job_id: int, attempt: int) -> str:
        """The Slurm job name of one attempt (this installation's, unique)."""
        return f"labyard-{self.instance}-{job_id}-{attempt}"

    def _attempt_of(self, name: str) -> int | None:
        """The attempt a job name of this installation carries."""
        prefix = f"labyard-{self.instance}-"
        if not name.startswith(prefix):
            return None
        _, _, attempt = name[len(prefix) :].partition("-")
        return int(attempt) if attempt.isdigit() else None

    def node_path(self, path: Path) -> Path:
        """Where the nodes see `path` (a path under the data folder)."""
        if self.shared is None:
            return path
        try:
            return self.shared / path.relative_to(self.settings.data_dir)
        except ValueError:
            return path

    # ------------------------------------------------------------------ submit

    def submit(self, spec: LaunchSpec) -> str:
        name = self.job_name(spec.job_id, spec.attempt)
        self._dirs[spec.job_id] = spec.job_dir
        existing = self.external_id_of(spec.job_id, spec.attempt)
        if existing:  # submitted before a crash: never twice
            return existing
        node_spec = replace(
            spec,
            job_dir=self.node_path(spec.job_dir),
            datasets=[
                DatasetMount(m.name, self.node_path(m.host_path), m.kind) for m in spec.datasets
            ],
        )
        link_datasets(replace(spec, datasets=node_spec.datasets))
        for stale in (EXIT_NAME, START_NAME, PLACED_FILE):
            (spec.job_dir / stale).unlink(missing_ok=True)
        launch = spec.job_dir / LAUNCH_FILE
        launch.parent.mkdir(exist_ok=True)
        launch.write_text(
            json.dumps(
                {
                    "argv": spec.argv,
                    "lab_dir": str(node_spec.lab_dir),
                    "log_max_bytes": self.settings.log_max_bytes,
                    "attempt": spec.attempt,
                }
            )
        )
        env = job_environment(node_spec, job_python=isolation.job_python(self.settings))
        if spec.gpu_count:
            env.pop("CUDA_VISIBLE_DEVICES", None)  # Slurm sets it from the allocation
        out = self.slurm.run(
            "sbatch", *self._sbatch_options(spec, name, node_spec.job_dir),
            stdin=script(BATCH_SCRIPT), env=env,
        ).stdout  # fmt: skip
        slurm_id = out.strip().split(";")[0]
        if not slurm_id.isdigit():
            raise ExecutorError(f"sbatch answered {out.strip()!r}, not a job id")
        self._names[name] = slurm_id
        return slurm_id

    def _sbatch_options(self, spec: LaunchSpec, name: str, node_dir: Path) -> list[str]:
        output = str(node_dir / SLURM_OUT).replace("%", "%%")
        options = [
            "--parsable",
            f"--job-name={name}",
            f"--comment=labyard job {spec.job_id} attempt {spec.attempt}",
            f"--chdir={node_dir}",
            f"--output={output}",
            "--open-mode=append",
            "--nodes=1",
            "--ntasks=1",
            f"--cpus-per-task={max(1, math.ceil(spec.cpus))}",
            f"--mem={spec.memory_mb}M",
            "--requeue",
        ]
        if spec.gpu_count:
            options.append(f"--gres=gpu:{spec.gpu_count}")
        partition = spec.partition or self.settings.slurm_partition
        for option, value in (
            ("partition", partition),
            ("account", spec.account),
            ("qos", spec.qos),
        ):
            if value:
                options.append(f"--{option}={value}")
        return options

    # ------------------------------------------------------------------ follow

    def refresh(self) -> None:
        jobs = self.slurm.queue()
        self._refreshed = True
        self._jobs = {job.id: job for job in jobs}
        self._names = {job.name: job.id for job in jobs}
        pending = sorted(
            (job for job in jobs if job.waiting),
            key=lambda j: (-j.priority, j.submitted or j.ended, int(j.id) if j.id.isdigit() else 0),
        )
        self._positions = {job.id: place for place, job in enumerate(pending, start=1)}

    def _lookup(self, external_id: str) -> SlurmJob | None:
        found = self._jobs.get(external_id)
        if found is not None:
            return found
        pairs = self.slurm.show_job(external_id) if external_id.isdigit() else None
        return from_show_job(pairs) if pairs is not None else None

    def poll(self, job_id: int, external_id: str) -> JobState:
        job = self._lookup(external_id)
        if job is None:
            return self._forgotten(job_id, external_id)
        base = self._attempt_of(job.name)
        attempt = base + job.restarts if base is not None else None
        if job.waiting:
            where = Placement(job.state, job.reason, self._positions.get(job.id))
            return JobState(running=True, waiting=True, placement=where, attempt=attempt)
        folder = self._dirs.get(job_id)
        if job.running:
            where = Placement(job.state, job.reason, None, job.nodes, self._gpus_of(job_id, job))
            started = (read_start(folder) if folder else None) or job.started
            return JobState(running=True, started_at=started, placement=where, attempt=attempt)
        return self._ended(job_id, job, attempt)

    def _gpus_of(self, job_id: int, job: SlurmJob) -> tuple[str, ...]:
        """The GPUs this run of the job got: as the batch script noted them, else from
        `scontrol show job -d` (once per run)."""
        key = (job.id, job.restarts)
        if key not in self._gpus:
            folder = self._dirs.get(job_id)
            placed = _read_placed(folder / PLACED_FILE) if folder else None
            if placed is not None and placed.get("restarts") == job.restarts:
                self._gpus[key] = tuple(str(g) for g in placed.get("gpus", []))
            elif job.running:
                pairs = self.slurm.show_job(job.id)
                self._gpus[key] = gpu_indices(pairs) if pairs else ()
            else:
                return ()
        return self._gpus[key]

    def _ended(self, job_id: int, job: SlurmJob, attempt: int | None) -> JobState:
        folder = self._dirs.get(job_id)
        record = read_exit(folder) if folder else None
        code = record.code if record is not None else self._exit_code(job.id)
        ran_from = job.started if job.nodes else None  # a job cancelled while pending never ran
        return replace(
            JobState.exited(
                code if code is not None else 1,
                started_at=(read_start(folder) if folder else None) or ran_from,
                finished_at=(record.at if record else None) or job.ended,
                reason=END_REASONS.get(job.state, "") or self._memory_killed(folder, job.state),
            ),
            attempt=attempt,
            placement=Placement(job.state, "", None, job.nodes, self._gpus_of(job_id, job)),
        )

    @staticmethod
    def _memory_killed(folder: Path | None, state: str) -> str:
        """OUT_OF_MEMORY's reason when slurmstepd noted in the job's Slurm output that it
        killed the job for its memory (OverMemoryKill, without cgroup limits), else ''."""
        if folder is None or state not in ("FAILED", "CANCELLED"):
            return ""
        try:
            with (folder / SLURM_OUT).open("rb") as fh:
                fh.seek(max(fh.seek(0, 2) - 65536, 0))
                tail = fh.read()
        except OSError:
            return ""
        return END_REASONS["OUT_OF_MEMORY"] if MEMORY_KILL_NOTE in tail else ""

    def _exit_code(self, slurm_id: str) -> int | None:
        """The exit code from accounting (sacct), else from scontrol (accounting off)."""
        accounted = self.slurm.accounting(slurm_id)
        if accounted is not None and accounted[1] is not None:
            return accounted[1]
        pairs = self.slurm.show_job(slurm_id)
        return exit_status(dict(pairs).get("ExitCode", "")) if pairs else None

    def _forgotten(self, job_id: int, external_id: str) -> JobState:
        """Slurm's controller no longer knows the job: accounting, else the exit record."""
        folder = self._dirs.get(job_id)
        accounted = self.slurm.accounting(external_id) if external_id.isdigit() else None
        record = read_exit(folder) if folder else None
        if accounted is not None:
            state, code = accounted
            if record is not None or code is not None:
                return JobState.exited(
                    record.code if record is not None else code or 0,
                    started_at=read_start(folder) if folder else None,
                    finished_at=record.at if record else None,
                    reason=END_REASONS.get(state, ""),
                )
        if record is not None:
            started = read_start(folder) if folder else None
            return JobState.exited(record.code, started_at=started, finished_at=record.at)
        return LOST

    def stop(self, job_id: int, external_id: str, *, force: bool) -> None:
        """SIGTERM to the job's processes; `force`: SIGKILL, then cancel. A job still
        waiting in Slurm is cancelled at once."""
        if not external_id.isdigit():
            return
        job = self._jobs.get(external_id)
        if job is not None and job.waiting:
            self.slurm.run("scancel", external_id, check=False)
            return
        signal = "KILL" if force else "TERM"
        self.slurm.run("scancel", f"--signal={signal}", "--full", external_id, check=False)
        if force:
            self.slurm.run("scancel", external_id, check=False)

    def adopt(self, job_id: int, attempt: int, external_id: str, job_dir: Path) -> JobState:
        self._dirs[job_id] = job_dir
        external_id = external_id or self.external_id_of(job_id, attempt)
        if not external_id:
            return LOST
        return self.poll(job_id, external_id)

    def external_id_of(self, job_id: int, attempt: int) -> str:
        """The Slurm id of an attempt submitted before a crash recorded it ('' if none):
        from the last squeue (taken every round, before any submission) and what this
        process submitted since, else from squeue asked by name."""
        name = self.job_name(job_id, attempt)
        if self._refreshed:
            return self._names.get(name, "")
        found = self.slurm.queue(name=name)
        return found[-1].id if found else ""

    # ------------------------------------------------------------------ nodes

    def nodes(self) -> list[NodeInfo]:
        running: dict[str, list[str]] = {}
        for job in self._jobs.values() if self._jobs else self.slurm.queue():
            if job.running:
                for node in expand_hostlist(job.nodes):
                    running.setdefault(node, []).append(job.id)
        return [_node_info(dict(pairs), running) for pairs in self.slurm.nodes()]

    # ------------------------------------------------------------------ start-up check

    def check(self) -> None:
        """A short Slurm job must read a file the platform writes into the data folder."""
        self.slurm.run("sinfo", "--noheader", "--format=%P")
        token = secrets.token_hex(8)
        folder = self.settings.data_dir / "slurm" / f"probe-{token}"
        folder.mkdir(parents=True)
        (folder / PROBE_REQUEST).write_text(token)
        node_folder = self.node_path(folder)
        options = [
            "--parsable",
            f"--job-name=labyard-{self.instance}-probe",
            f"--chdir={node_folder}",
            "--output=/dev/null",
            "--ntasks=1",
            "--time=5",
            "--mem=100M",
        ]
        if self.settings.slurm_partition:
            options.append(f"--partition={self.settings.slurm_partition}")
        try:
            out = self.slurm.run("sbatch", *options, stdin=script(PROBE_SCRIPT)).stdout
            self._await_probe(out.strip().split(";")[0], folder, node_folder, token)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _await_probe(self, slurm_id: str, folder: Path, node_folder: Path, token: str) -> None:
        deadline = time.monotonic() + self.settings.slurm_probe_timeout_seconds
        answer = folder / PROBE_ANSWER
        while time.monotonic() < deadline:
            if answer.exists() and answer.read_text().startswith(token):
                return
            pairs = self.slurm.show_job(slurm_id)
            job = from_show_job(pairs) if pairs else None
            if job is None or not (job.waiting or job.running):
                if answer.exists() and answer.read_text().startswith(token):
                    return
                raise ExecutorError(
                    f"the probe job {slurm_id} ended ({job.state if job else 'gone'}) on "
                    f"{(job.nodes if job else '') or 'its node'} without reading "
                    f"{node_folder / PROBE_REQUEST}: the nodes must see the data folder "
                    f"{self.settings.data_dir} at {node_folder.parent.parent} (a shared "
                    "filesystem; LABYARD_SLURM_SHARED_DIR) and run this Python with Labyard, "
                    f"{sys.executable}"
                )
            time.sleep(0.2)
        where = self.slurm.show_job(slurm_id)
        why = dict(where).get("Reason", "") if where else ""
        self.slurm.run("scancel", slurm_id, check=False)
        raise ExecutorError(
            f"the probe job {slurm_id} did not run within "
            f"{self.settings.slurm_probe_timeout_seconds:g} s (Slurm: {why or 'no reason'})"
        )


def _read_placed(path: Path) -> dict[str, Any] | None:
    """The batch script's note of where its run is (None: not written, or unreadable)."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _used(text: str) -> int:
    """GPUs in use from `GresUsed=gpu:2(IDX:0-1)` (or `gpu:tesla:2(...)`)."""
    head = text.split("(")[0]
    count = head.rsplit(":", 1)[-1]
    return int(count) if count.isdigit() else 0


def _node_info(values: dict[str, str], running: dict[str, list[str]]) -> NodeInfo:
    name = values.get("NodeName", "")
    gres = values.get("Gres", "")
    gpus = sum(_used(part) for part in gres.split(",") if part.startswith("gpu"))
    used = sum(
        _used(part) for part in values.get("GresUsed", "").split(",") if part.startswith("gpu")
    )
    reason = values.get("Reason", "")
    return NodeInfo(
        name=name,
        state=values.get("State", "").lower(),
        gpus=gpus,
        gpus_used=used,
        cpus=_int(values.get("CPUTot", "0")),
        cpus_used=_int(values.get("CPUAlloc", "0")),
        memory_mb=_int(values.get("RealMemory", "0")),
        memory_used_mb=_int(values.get("AllocMem", "0")),
        partitions=tuple(p for p in values.get("Partitions", "").split(",") if p),
        reason="" if reason in ("", "(null)", "None") else reason,
        jobs=tuple(running.get(name, [])),
    )


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0
