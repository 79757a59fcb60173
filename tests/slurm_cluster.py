"""A real two-node Slurm cluster on this machine, for the Slurm executor's tests.

Debian's `slurm-wlm` and `munge`, started as root from files under SLURM_DIR (nothing in
/etc is touched): our own `munged` (own key and socket), `slurmctld`, and two `slurmd -N`
nodes (lynode1, lynode2) with their own ports. Each node offers 8 CPUs, 8000 MiB and 4 fake
GPUs: `gres.conf` with `AutoDetect=off` names character devices made with `mknod` (major
195, like /dev/nvidiaN), so Slurm allocates them and sets CUDA_VISIBLE_DEVICES. With cgroup
v1's memory controller (these machines), task/cgroup enforces `--mem` and Slurm reports
OUT_OF_MEMORY; elsewhere (cgroup v2, or LABYARD_TEST_SLURM_CGROUP=off) jobacct_gather's
OverMemoryKill does, and Slurm says FAILED (the executor reads slurmstepd's note).
Accounting is on: our own MariaDB (own data folder, 127.0.0.1 only) under `slurmdbd`, with
the account `labyard` and the QOS `onejob` (one running job per user) given to root, and
associations, limits and QOS enforced (`sacctmgr`, once). `conf_without_accounting` is the
same cluster seen by commands with accounting off (sacct then refuses; the executor's
scontrol path). Finished jobs stay visible for an hour (MinJobAge). Commands find the
cluster through SLURM_CONF (`SlurmCluster.env`).

    python -m tests.services slurm      # start it (idempotent, about a second)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SLURM_DIR = Path(os.environ.get("LABYARD_TEST_SLURM_DIR", "/var/lib/labyard-test-slurm"))
CTLD_PORT = 16817
NODE_PORTS = {"lynode1": 16818, "lynode2": 16819}
GPUS_PER_NODE = 4
CPUS_PER_NODE = 8
MEMORY_PER_NODE_MB = 8000
DB_PORT = 16306
DBD_PORT = 16820
ACCOUNT = "labyard"
QOS = "onejob"  # at most one running job per user
HEALTHY_STATES = {"idle", "mix", "mixed", "alloc", "allocated", "comp", "completing"}
SBIN = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"


class SlurmMissing(RuntimeError):
    """Slurm or munge is not installed, or the cluster cannot start (the message says why)."""


@dataclass(frozen=True)
class SlurmCluster:
    """The running test cluster."""

    conf: Path
    nodes: tuple[str, ...]
    gpus_per_node: int
    cgroup_memory: bool  # task/cgroup limits memory (Slurm says OUT_OF_MEMORY), else
    # jobacct_gather's OverMemoryKill ends a job over --mem (Slurm says FAILED)

    @property
    def conf_without_accounting(self) -> Path:
        """A slurm.conf for commands that see this cluster with accounting off."""
        return self.conf.parent / "slurm-noacct" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment the Slurm commands need to find this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def command(self, *argv: str, check: bool = True) -> str:
        """Run a Slurm command (scontrol, squeue, ...) against the cluster; its stdout."""
        proc = subprocess.run(list(argv), capture_output=True, text=True, env=self.env, timeout=60)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def node_states(self) -> dict[str, str]:
        """Each node's state as sinfo says it (idle, mix, alloc, down*, ...)."""
        out = self.command("sinfo", "-h", "-N", "-o", "%N %t", check=False)
        states: dict[str, str] = {}
        for line in out.splitlines():
            name, _, state = line.partition(" ")
            states[name] = state.strip()
        return states

    def resume_nodes(self) -> None:
        """Bring every node back (a test may have set one down)."""
        for node, state in self.node_states().items():
            if state.rstrip("*~#!%$@^-") not in HEALTHY_STATES:
                self.command("scontrol", "update", f"nodename={node}", "state=resume", check=False)


def _memory_cgroup() -> bool:
    """A cgroup v1 memory controller for task/cgroup (LABYARD_TEST_SLURM_CGROUP=off: use
    jobacct_gather's OverMemoryKill instead, as on a cgroup v2 host)."""
    if os.environ.get("LABYARD_TEST_SLURM_CGROUP") == "off":
        return False
    return Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()


def _slurm_conf(folder: Path, cgroups: bool) -> str:
    host = socket.gethostname()
    if cgroups:
        tracking = "ProctrackType=proctrack/cgroup\nTaskPlugin=task/cgroup\n"
    else:
        tracking = (
            "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
            "JobAcctGatherParams=OverMemoryKill\n"
        )
    nodes = "".join(
        f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
        f"CPUs={CPUS_PER_NODE} RealMemory={MEMORY_PER_NODE_MB} Gres=gpu:{GPUS_PER_NODE} "
        "State=UNKNOWN\n"
        for name, port in NODE_PORTS.items()
    )
    return f"""\
# labyard tests: a two-node cluster on one machine (tests/slurm_cluster.py writes this)
ClusterName=labyardtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={CTLD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd-%n.log
{tracking}JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={DBD_PORT}
AccountingStoragePass={folder}/munge/munge.socket
AccountingStorageEnforce=associations,limits,qos
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SchedulerType=sched/builtin
GresTypes=gpu
ReturnToService=2
MinJobAge=3600
KillWait=5
SlurmdTimeout=30
MessageTimeout=10
SlurmdParameters=config_overrides
JobRequeue=1
MailProg=/bin/true
MpiDefault=none
{nodes}PartitionName=main Nodes={",".join(NODE_PORTS)} Default=YES MaxTime=INFINITE State=UP
PartitionName=second Nodes={list(NODE_PORTS)[-1]} MaxTime=INFINITE State=UP
"""


def _slurmdbd_conf(folder: Path) -> str:
    return f"""\
# labyard tests: slurmdbd on our own MariaDB (tests/slurm_cluster.py writes this)
AuthType=auth/munge
AuthInfo=socket={folder}/munge/munge.socket
DbdAddr=127.0.0.1
DbdHost={socket.gethostname()}
DbdPort={DBD_PORT}
SlurmUser=root
PidFile={folder}/slurmdbd.pid
LogFile={folder}/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={DB_PORT}
StorageUser=root
StorageLoc=slurm_acct_db
"""


def _gres_conf(folder: Path) -> str:
    last = GPUS_PER_NODE - 1
    return (
        "AutoDetect=off\n"
        f"NodeName=lynode[1-{len(NODE_PORTS)}] Name=gpu File={folder}/dev/nvidia[0-{last}]\n"
    )


CGROUP_CONF = (
    "CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nConstrainRAMSpace=yes\n"
    "ConstrainSwapSpace=yes\nConstrainDevices=no\nConstrainCores=no\n"
)


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def _write_files(folder: Path, cgroups: bool) -> bool:
    """The configuration, key and fake GPU devices; True when the configuration changed."""
    for sub in ("dev", "state", "spool", "log", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "munge").chmod(0o700)
    for index in range(GPUS_PER_NODE):
        device = folder / "dev" / f"nvidia{index}"
        if not device.exists():
            os.mknod(device, 0o666 | 0o020000, os.makedev(195, index))  # S_IFCHR
    key = folder / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
    changed = _write_if_changed(folder / "slurm.conf", _slurm_conf(folder, cgroups))
    changed |= _write_if_changed(folder / "gres.conf", _gres_conf(folder))
    changed |= _write_if_changed(folder / "cgroup.conf", CGROUP_CONF if cgroups else "")
    changed |= _write_if_changed(folder / "slurmdbd.conf", _slurmdbd_conf(folder))
    (folder / "slurmdbd.conf").chmod(0o600)
    off = folder / "slurm-noacct"
    off.mkdir(exist_ok=True)
    conf = _slurm_conf(folder, cgroups)
    _write_if_changed(off / "slurm.conf", conf.replace("/slurmdbd\n", "/none\n", 1))
    for name in ("gres.conf", "cgroup.conf"):
        _write_if_changed(off / name, (folder / name).read_text())
    return changed


def _alive(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process runs."""
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def _stop(pid_file: Path) -> None:
    pid = _alive(pid_file)
    if pid is None:
        return
    os.kill(pid, 15)
    for _ in range(100):
        if _alive(pid_file) is None:
            return
        time.sleep(0.05)


def _start(argv: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")


DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")


def _binaries() -> dict[str, str]:
    found = {}
    for name in (*DAEMONS, "mariadb-install-db", "sacctmgr", "sbatch", "sinfo"):
        path = shutil.which(name, path=SBIN)
        if path is None:
            raise SlurmMissing(
                f"{name} not found: apt-get install -y slurm-wlm munge slurmdbd mariadb-server"
            )
        found[name] = path
    if os.geteuid() != 0:
        raise SlurmMissing("starting the test Slurm cluster (munged, slurmctld, slurmd) needs root")
    return found


def start_cluster(folder: Path = SLURM_DIR) -> SlurmCluster:
    """Write the files and start what is not running; wait until both nodes answer."""
    binaries = _binaries()
    cgroups = _memory_cgroup()
    cluster = SlurmCluster(folder / "slurm.conf", tuple(NODE_PORTS), GPUS_PER_NODE, cgroups)
    if _write_files(folder, cgroups):  # a new configuration: daemons start again with it
        for pid_file in [
            folder / "slurmdbd.pid",
            folder / "slurmctld.pid",
            *_node_pid_files(folder),
        ]:
            _stop(pid_file)
    env = cluster.env
    if _alive(folder / "munge" / "munged.pid") is None:
        munge = folder / "munge"
        _start(
            [
                binaries["munged"],
                f"--socket={munge / 'munge.socket'}",
                f"--key-file={munge / 'munge.key'}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={folder / 'log' / 'munged.log'}",
                f"--seed-file={munge / 'munge.seed'}",
                "--force",
            ],
            env,
        )
    _start_accounting(folder, binaries, env)
    if _alive(folder / "slurmctld.pid") is None:
        _start([binaries["slurmctld"]], env)
    for name, pid_file in zip(NODE_PORTS, _node_pid_files(folder), strict=True):
        if _alive(pid_file) is None:
            _start([binaries["slurmd"], "-N", name], env)
    _wait_healthy(cluster, folder)
    return cluster


def _start_accounting(folder: Path, binaries: dict[str, str], env: dict[str, str]) -> None:
    """MariaDB (a data folder made once), slurmdbd, then the cluster, account and QOS."""
    data = folder / "mariadb"
    if not (data / "mysql").is_dir():
        shutil.rmtree(data, ignore_errors=True)
        _start(
            [binaries["mariadb-install-db"], "--no-defaults", f"--datadir={data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            env,
        )  # fmt: skip
    if _alive(folder / "mariadbd.pid") is None:
        subprocess.Popen(
            [binaries["mariadbd"], "--no-defaults", f"--datadir={data}", "--user=root",
             f"--port={DB_PORT}", "--bind-address=127.0.0.1", "--skip-name-resolve",
             f"--socket={folder / 'mariadbd.sock'}", f"--pid-file={folder / 'mariadbd.pid'}",
             f"--log-error={folder / 'log' / 'mariadbd.log'}", "--innodb-buffer-pool-size=64M"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        _wait_port(DB_PORT, folder / "log" / "mariadbd.log")
    if _alive(folder / "slurmdbd.pid") is None:
        _start([binaries["slurmdbd"]], env)
        _wait_port(DBD_PORT, folder / "log" / "slurmdbd.log")
    sacctmgr = binaries["sacctmgr"]
    wanted = f"labyardtest|{ACCOUNT}|root|normal,{QOS}"
    shown = subprocess.run(
        [sacctmgr, "-n", "-P", "show", "assoc", "format=cluster,account,user,qos"],
        capture_output=True, text=True, env=env, timeout=60,
    ).stdout  # fmt: skip
    if wanted not in shown.splitlines():
        for argv in (
            ["add", "cluster", "labyardtest"],
            ["add", "account", ACCOUNT, f"Description={ACCOUNT}", f"Organization={ACCOUNT}"],
            ["add", "qos", QOS, "MaxJobsPerUser=1"],
            ["add", "user", "root", f"Account={ACCOUNT}"],
            ["modify", "user", "root", "set", f"qos+={QOS}"],
        ):  # each may exist already: sacctmgr then says so and exits 1
            subprocess.run([sacctmgr, "-i", *argv], capture_output=True, env=env, timeout=60)


def _wait_port(port: int, log: Path, timeout: float = 30) -> None:
    """Wait until a daemon listens on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s\n{tail}")


def _node_pid_files(folder: Path) -> list[Path]:
    return [folder / f"slurmd-{name}.pid" for name in NODE_PORTS]


def _ok(cluster: SlurmCluster) -> bool:
    """Both nodes answer and can take jobs (`idle*` is a node that does not answer)."""
    states = cluster.node_states()
    return set(states) == set(cluster.nodes) and all(
        state in HEALTHY_STATES for state in states.values()
    )


def _wait_healthy(cluster: SlurmCluster, folder: Path, timeout: float = 60) -> None:
    start = time.monotonic()
    resumed = False
    while time.monotonic() < start + timeout:
        if _ok(cluster):
            return
        if not resumed and time.monotonic() > start + 3:
            cluster.resume_nodes()  # left down or drained by an earlier run
            resumed = True
        time.sleep(0.2)
    log = folder / "log" / "slurmctld.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"the test Slurm cluster did not come up: {cluster.node_states()}\n{tail}")


def healthy(folder: Path = SLURM_DIR) -> SlurmCluster | None:
    """The cluster if its configuration is current and both nodes answer (fast path)."""
    conf = folder / "slurm.conf"
    cgroups = _memory_cgroup()
    if not conf.exists() or conf.read_text() != _slurm_conf(folder, cgroups):
        return None
    if shutil.which("sinfo") is None:
        return None
    if any(_alive(folder / f"{name}.pid") is None for name in ("mariadbd", "slurmdbd")):
        return None
    cluster = SlurmCluster(conf, tuple(NODE_PORTS), GPUS_PER_NODE, cgroups)
    return cluster if _ok(cluster) else None
