"""Local jobs are contained: stop ends the whole tree, a job cannot read the server's secrets
or other projects' files, and an output folder past its quota stops the job with the reason.

Real jobs (`sh` scripts) under the real scheduler and log wrapper. The data folder lives in a
folder others may enter (as /var/lib would be), not under pytest's root-only temp folder, so
what a job user can reach is decided by Labyard's permissions alone.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from labyard.config import Settings
from labyard.db import Database
from labyard.jobs import isolation, proctree, service
from labyard.jobs.executors.local import LocalExecutor
from labyard.jobs.models import Job
from labyard.jobs.scheduler import Scheduler
from tests.conftest import TEST_SECRET
from tests.factories import ADMIN_PASSWORD, make_users_fast
from tests.integration.jobs.conftest import all_final, run_until
from tests.integration.jobs.test_local_jobs import FOUR_GPUS

TEST_JOB_USER = "labyard-test-job"
# Jobs get this interpreter: Debian's, which any user may run (the venv's links under /root).
REACHABLE_PYTHON = "/usr/bin/python3"
TREE_SCRIPT = """\
# two grandchildren leave the job's session with setsid, one through a double fork
setsid sh -c 'echo $$ >> "$MLSTEAM_OUTPUT_DIR/pids"; exec sleep 300' &
(setsid sh -c 'echo $$ >> "$MLSTEAM_OUTPUT_DIR/pids"; exec sleep 301' &)
while [ "$(wc -l < "$MLSTEAM_OUTPUT_DIR/pids" 2>/dev/null)" != 2 ]; do sleep 0.05; done
echo started
exec sleep 302
"""
PROBE_SCRIPT = """\
id -u > "$MLSTEAM_OUTPUT_DIR/uid"
for f in "$@"; do
  [ "$f" = --mode ] && break
  if cat "$f" > /dev/null 2>&1; then echo "READ $f"; else echo "DENIED $f"; fi
done
cat "$MLSTEAM_INPUT_DIR/mine/data.txt"
echo mine > "$MLSTEAM_OUTPUT_DIR/result.txt"
"""
# its line comes before the writing: the quota check may stop the job mid-write (a loaded
# CI machine did), before any later line
QUOTA_SCRIPT = """\
echo writing
head -c 3000000 /dev/zero > "$MLSTEAM_OUTPUT_DIR/big.bin"
exec sleep 300
"""


@pytest.fixture
def settings(db_url: str) -> Iterator[Settings]:
    """This module's settings: a data folder others may enter, umask 077 like the server."""
    base = Path(tempfile.mkdtemp(prefix="labyard-iso-", dir="/tmp"))
    base.chmod(0o711)
    old_umask = os.umask(0o077)
    yield Settings(
        data_dir=base / "data",
        database_url=db_url,
        secret_key=TEST_SECRET,
        start_scheduler=False,
        admin_password=ADMIN_PASSWORD,
        job_python=REACHABLE_PYTHON,
    )
    os.umask(old_umask)
    shutil.rmtree(base, ignore_errors=True)


def write_sh_lab(folder: Path, script: str, args: str = "") -> Path:
    """A lab whose command runs `script` with `sh`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.sh").write_text(script)
    (folder / "mlsteam.yml").write_text(f"command: sh job.sh {args}\nparams:\n  mode: [ok]\n")
    return folder


def submit_as(
    database: Database, settings: Settings, username: str, lab: Path, **kwargs: object
) -> int:
    """One job from `lab` in `username`'s default project (the user is made if missing)."""
    with database.session() as db:
        user = db.query(service.User).filter_by(username=username).one_or_none()
    if user is None:
        user = make_users_fast(database, username)[username]
    with database.session() as db:
        owner = db.get(service.User, user.id)
        assert owner is not None
        sweep = service.create_sweep(
            db,
            owner,
            settings=settings,
            project_id=owner.default_project_id,
            lab_dir=lab,
            flavor="tiny",
            inventory=FOUR_GPUS,
            **kwargs,  # type: ignore[arg-type]
        )
        return db.query(Job).filter_by(sweep_id=sweep.id).one().id


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop(database: Database, job_id: int) -> None:
    with database.session() as db:
        job = db.get(Job, job_id)
        assert job is not None
        service.stop_job(db, db.get(service.User, job.created_by_id), job_id)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- process tree


def _cgroups_here() -> bool:
    probe = proctree.create_cgroup(0)
    if probe is None:
        return False
    proctree.remove_cgroup(probe)
    return True


@pytest.mark.usefixtures("flavors")
@pytest.mark.parametrize("restart", [False, True], ids=["same-server", "after-restart"])
@pytest.mark.parametrize("cgroups", [True, False], ids=["cgroup", "subreaper"])
def test_stop_ends_setsid_grandchildren(
    database: Database, settings: Settings, tmp_path: Path, cgroups: bool, restart: bool
) -> None:
    if cgroups and not _cgroups_here():
        pytest.skip("cgroup v2 is not writable here")
    settings.stop_grace_seconds = 0.5
    job_id = submit_as(database, settings, "ana", write_sh_lab(tmp_path / "lab", TREE_SCRIPT))
    folder = service.job_dir(settings, job_id)
    first = Scheduler(settings, database, executor=LocalExecutor(settings, cgroups=cgroups))
    scheduler = first
    try:
        run_until(first, database, lambda _: "started" in _text(folder / "job.log"))
        pids = [int(p) for p in _text(folder / "output" / "pids").split()]
        [job] = run_until(first, database, lambda js: js[0].external_id != "")
        wrapper = int(job.external_id.split(":")[0])
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        assert all(os.getsid(p) == p != os.getsid(wrapper) for p in pids)  # own sessions
        assert (folder / proctree.CGROUP_FILE).exists() == cgroups
        if restart:  # a new server: no process handles, only the database and the files
            first.release_lease()
            scheduler = Scheduler(
                settings, database, executor=LocalExecutor(settings, cgroups=cgroups)
            )
        _stop(database, job_id)
        [job] = run_until(scheduler, database, all_final)
        assert job.status == "stopped" and job.reason == "stopped by user"
        assert [p for p in pids if _alive(p)] == []
        if cgroups:
            assert proctree.read_cgroup(folder) is None  # removed once empty
    finally:
        for pid in [int(p) for p in _text(folder / "output" / "pids").split()]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- secrets


def _probe_targets(settings: Settings, other_output: Path) -> dict[str, Path]:
    """Files a job must not read: the server's secrets, another project's job and dataset."""
    data = settings.data_dir
    server = settings.model_copy(update={"secret_key": ""})
    assert server.resolved_secret_key  # generated 0600 into the data dir, as on a first start
    database_file = data / "labyard.db"
    database_file.write_bytes(b"SQLite format 3\0")  # what umask 077 makes of the database
    other = data / "datasets" / "other" / "private"
    other.mkdir(parents=True)
    (other / "data.txt").write_text("another project's data")
    return {
        "secret_key": data / "secret_key",
        "database": database_file,
        "other job's output": other_output,
        "unattached dataset": other / "data.txt",
    }


@pytest.mark.usefixtures("flavors")
@pytest.mark.parametrize("job_user", [TEST_JOB_USER, ""], ids=["job-user", "trusted-mode"])
def test_a_job_cannot_read_the_servers_secrets_or_other_projects_files(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler, job_user: str
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the job user needs a root server")
    settings.job_user = job_user
    assert isolation.ensure_job_user(settings) in (
        None,
        f"Created the system user {job_user!r}; local jobs run as it.",
    )
    scheduler = make_scheduler(inventory=FOUR_GPUS)
    other_id = submit_as(database, settings, "bob", write_sh_lab(tmp_path / "bob", PROBE_SCRIPT))
    run_until(scheduler, database, all_final)  # bob's output exists before ana's job looks
    mine = settings.data_dir / "datasets" / "ana" / "mine"
    mine.mkdir(parents=True)
    (mine / "data.txt").write_text("attached dataset")
    other_output = service.job_dir(settings, other_id) / "output" / "result.txt"
    assert other_output.exists()  # so DENIED below means denied, not missing
    targets = _probe_targets(settings, other_output)
    assert all(path.exists() for path in targets.values())
    args = " ".join(str(p) for p in targets.values())
    job_id = submit_as(
        database,
        settings,
        "ana",
        write_sh_lab(tmp_path / "ana", PROBE_SCRIPT, args),
        datasets=[service.DatasetInput("mine", mine)],
    )
    jobs = run_until(scheduler, database, all_final)
    assert [(j.status, j.exit_code) for j in jobs] == [("succeeded", 0), ("succeeded", 0)]
    folder = service.job_dir(settings, job_id)
    log = _text(folder / "job.log")
    assert "attached dataset" in log  # its own dataset is readable, its output writable
    assert _text(folder / "output" / "result.txt") == "mine\n"
    assert _text(other_output) == "mine\n"
    uid = int(_text(folder / "output" / "uid"))
    if job_user:
        assert uid == pwd.getpwnam(job_user).pw_uid != 0
        for name, path in targets.items():
            assert f"DENIED {path}" in log, name
        assert stat.S_IMODE((settings.data_dir / "secret_key").stat().st_mode) == 0o600
    else:  # the server's own user reads everything: why groups must use Docker
        assert uid == os.geteuid()
        assert all(f"READ {path}" in log for path in targets.values())
        assert isolation.isolation_warnings(settings) == [isolation.TRUSTED_ONLY_WARNING]


LAB_PROBE = """\
import os, sys
open("made-by-the-session.txt", "w").write("hi")
print("READ", open("nb.ipynb").read())
os.mkdir("sub")
open("sub/deeper.txt", "w").write("deep")
for path in sys.argv[1:]:
    try:
        open(path).read() if os.path.isfile(path) else os.listdir(path)
        print("READ", path)
    except OSError:
        print("DENIED", path)
"""


def test_a_job_whose_lab_is_a_link_works_in_that_lab_and_no_other(settings: Settings) -> None:
    """A lab session's job: its `lab/` links to the lab's own folder, which it may read and
    write as the job user; other labs, the labs list and the secret key stay closed."""
    if os.geteuid() != 0:
        pytest.skip("the job user needs a root server")
    settings.job_user = TEST_JOB_USER
    isolation.ensure_job_user(settings)
    identity = isolation.job_identity(settings)
    assert identity is not None
    data = settings.data_dir
    labs = data / "labs"
    (labs / "1").mkdir(parents=True)
    (labs / "1" / "nb.ipynb").write_text("notebook")
    (labs / "2").mkdir()
    (labs / "2" / "train.py").write_text("another project's code")
    (data / "secret_key").write_text("s")
    job = data / "jobs" / "7"
    (job / "output").mkdir(parents=True)
    (job / "lab").symlink_to(os.path.relpath(labs / "1", job))
    groups = isolation.grant_job_files(settings, identity, 7, job, [])
    closed = [labs / "2" / "train.py", labs, data / "secret_key"]
    done = subprocess.run(
        [REACHABLE_PYTHON, "-c", LAB_PROBE, *map(str, closed)],
        cwd=job / "lab", user=identity.uid, group=identity.gid, extra_groups=groups,
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "READ notebook" in done.stdout
    assert all(f"DENIED {path}" in done.stdout for path in closed), done.stdout
    made = labs / "1" / "made-by-the-session.txt"
    assert made.read_text() == "hi" and made.stat().st_uid == identity.uid
    assert (labs / "1" / "sub" / "deeper.txt").read_text() == "deep"
    assert (job / "lab").is_symlink()  # the link itself was left alone


# --------------------------------------------------------------------------- quota


@pytest.mark.usefixtures("flavors")
def test_a_job_writing_past_its_output_quota_is_stopped_with_the_reason(
    database: Database, settings: Settings, tmp_path: Path, make_scheduler
) -> None:
    settings.job_output_quota_bytes = 1_000_000
    settings.stop_grace_seconds = 0.5
    within = submit_as(
        database,
        settings,
        "ana",
        write_sh_lab(tmp_path / "ok", 'echo small > "$MLSTEAM_OUTPUT_DIR/a"\n'),
    )
    over = submit_as(database, settings, "ana", write_sh_lab(tmp_path / "big", QUOTA_SCRIPT))
    jobs = {j.id: j for j in run_until(make_scheduler(inventory=FOUR_GPUS), database, all_final)}
    assert (jobs[within].status, jobs[within].reason) == ("succeeded", "")
    job = jobs[over]
    assert job.status == "stopped" and job.exit_code == 128 + signal.SIGTERM
    assert job.reason.startswith("output quota exceeded") and "limit is 1000000 bytes" in job.reason
    assert "writing" in _text(service.job_dir(settings, over) / "job.log")


# --------------------------------------------------------------------------- warnings


@pytest.mark.parametrize("executor", ["local", "docker"])
def test_admin_page_says_when_local_jobs_are_for_one_trusted_user(
    settings: Settings, admin_web, executor: str
) -> None:
    settings.job_user = ""  # as a server that is not root: jobs run as the server's user
    settings.executor = executor  # type: ignore[assignment]
    page = admin_web.get("/admin")
    assert page.status_code == 200
    shown = "The local executor is for one trusted user" in page.text
    assert shown == (executor == "local")
    assert ("must use the Docker executor" in page.text) == shown


def test_a_missing_job_user_stops_local_jobs_instead_of_running_them_as_root(
    settings: Settings,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only a root server uses the job user")
    settings.job_user = "labyard-no-such-user"
    with pytest.raises(LookupError):
        isolation.job_identity(settings)
    [warning] = isolation.isolation_warnings(settings)
    assert "Local jobs cannot start" in warning and "labyard serve" in warning


def test_a_job_user_who_cannot_run_the_job_python_runs_jobs_as_the_server_and_says_so(
    settings: Settings, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("only a root server uses the job user")
    settings.job_user = TEST_JOB_USER
    isolation.ensure_job_user(settings)
    assert isolation.job_identity(settings) is not None  # Debian's python: reachable
    hidden = tmp_path / "root-only"  # like a venv under /root
    hidden.mkdir(mode=0o700)
    (hidden / "python").symlink_to(REACHABLE_PYTHON)
    settings.job_python = str(hidden / "python")
    assert isolation.job_identity(settings) is None
    [warning] = isolation.isolation_warnings(settings)
    assert f"cannot run {hidden / 'python'}" in warning and "run as root" in warning
    assert isolation.TRUSTED_ONLY_WARNING in warning


def test_no_job_user_is_created_for_docker_or_slurm(settings: Settings) -> None:
    """Only local jobs run as the job user: a Docker or Slurm server creates none (and says
    nothing about one at start)."""
    settings.job_user = "labyard-nobody-test"
    for executor in ("docker", "slurm"):
        settings.executor = executor
        assert isolation.ensure_job_user(settings) is None
    with pytest.raises(KeyError):
        pwd.getpwnam("labyard-nobody-test")
