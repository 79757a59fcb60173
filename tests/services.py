"""The real components the test suite runs against: PostgreSQL, Docker Engine, the job
image, Chromium, a two-node Slurm cluster (tests/slurm_cluster.py).

Every function is idempotent, cached per process, and fast when the thing is already up.
A component that cannot be had raises ServiceMissing (saying how to install it); fixtures
wrap calls in `require(fn)`, which turns that into a skip, or a failure under CI=true.

Warm everything before a test run (as .ci/run does):

    python -m tests.services ensure-all
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import glob
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from tests import slurm_cluster as slurm
from tests.slurm_cluster import SlurmCluster

REPO = Path(__file__).resolve().parent.parent
RUNNER_DIR = REPO / "runner"

PG_DATA = Path(os.environ.get("LABYARD_TEST_PGDATA", "/tmp/labyard-pg"))
PG_HOST = "127.0.0.1"
PG_PORT = 55432
PG_USER = PG_PASSWORD = "labyard"
PG_URL = f"postgresql+psycopg://{PG_USER}:{PG_PASSWORD}@{PG_HOST}:{PG_PORT}/postgres"

DOCKERD_LOG = Path("/tmp/dockerd.log")
DOCKERD_WAIT_S = 60.0

BASE_IMAGE = "labyard/base:bookworm"
TEST_IMAGE = "labyard/runner:test"
CONTEXT_LABEL = "org.labyard.test-context"

CHROMIUM = "/usr/bin/chromium"
# Launch arguments for Debian's chromium under Playwright (never `playwright install`):
#   p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

T = TypeVar("T")
P = ParamSpec("P")


class ServiceMissing(RuntimeError):
    """A real component is not available; the message says how to get it."""


def require(fn: Callable[[], T]) -> T:
    """Call `fn()`; if it raises ServiceMissing, fail the test under CI=true, else skip it."""
    import pytest

    try:
        return fn()
    except ServiceMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required component missing in CI: {exc}", pytrace=False)
        pytest.skip(str(exc))


def _once(fn: Callable[P, T]) -> Callable[P, T]:
    """Like functools.cache, but a ServiceMissing is remembered too (no 60 s retry per test)."""
    results: dict[Any, tuple[bool, Any]] = {}

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        key = (args, tuple(sorted(kwargs.items())))
        if key not in results:
            try:
                results[key] = (True, fn(*args, **kwargs))
            except ServiceMissing as exc:
                results[key] = (False, exc)
        ok, value = results[key]
        if not ok:
            raise value
        return value

    wrapper.cache_clear = results.clear  # type: ignore[attr-defined]
    return wrapper


@contextlib.contextmanager
def _machine_lock(name: str) -> Iterator[None]:
    """Serialize starting a component across processes (pytest-xdist workers, .ci/run)."""
    with open(f"/tmp/labyard-services-{name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], *, timeout: float = 120, check: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return proc.stdout


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        raise ServiceMissing(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
            "apt-get install -y postgresql"
        )
    return Path(found[-1]).parent


def _as_postgres(cmd: list[str], *, timeout: float = 120) -> str:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return _run(cmd, timeout=timeout)


def _pg_can_login() -> bool:
    try:
        import psycopg
    except ImportError as exc:
        raise ServiceMissing("psycopg is not installed: pip install -e '.[test]'") from exc
    try:
        with psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user=PG_USER,
            password=PG_PASSWORD,
            dbname="postgres",
            connect_timeout=3,
        ) as conn:
            conn.execute("select 1")
        return True
    except psycopg.OperationalError:
        return False


@_once
def postgres_url() -> str:
    """Start (once per machine; reused when running) a private PostgreSQL cluster on
    127.0.0.1:55432 with superuser labyard/labyard; return its SQLAlchemy URL."""
    if _port_open(PG_HOST, PG_PORT) and _pg_can_login():
        return PG_URL
    bindir = _pg_bindir()
    with _machine_lock("postgres"):
        if _port_open(PG_HOST, PG_PORT) and _pg_can_login():
            return PG_URL
        return _start_postgres(bindir)


def _start_postgres(bindir: Path) -> str:
    if _port_open(PG_HOST, PG_PORT):
        raise ServiceMissing(
            f"port {PG_PORT} is taken by something that refuses {PG_USER}/{PG_PASSWORD}"
        )
    if os.geteuid() != 0 and PG_DATA.exists() and PG_DATA.stat().st_uid != os.geteuid():
        raise ServiceMissing(f"{PG_DATA} belongs to another user; run as root or remove it")
    if not (PG_DATA / "PG_VERSION").exists():
        if PG_DATA.exists():  # a half-made cluster from an interrupted run
            shutil.rmtree(PG_DATA)
        PG_DATA.mkdir(parents=True, mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(PG_DATA, "postgres", "postgres")
        pwfile = PG_DATA.parent / f".labyard-pg-pw-{os.getpid()}"
        pwfile.write_text(PG_PASSWORD + "\n")
        try:
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres", "postgres")
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(PG_DATA),
                    "-U",
                    PG_USER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = PG_DATA / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(
                "\n# labyard tests: private, fast, not durable\n"
                f"listen_addresses = '{PG_HOST}'\nport = {PG_PORT}\n"
                f"unix_socket_directories = '{PG_DATA}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nshared_buffers = 128MB\n"
            )
    _as_postgres(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(PG_DATA),
            "-l",
            str(PG_DATA / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        timeout=90,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _pg_can_login():
            return PG_URL
        time.sleep(0.2)
    log = (PG_DATA / "server.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"PostgreSQL started but does not accept logins:\n{log}")


# --------------------------------------------------------------------------- Docker


def _docker_ping() -> Any | None:
    try:
        import docker
    except ImportError as exc:
        raise ServiceMissing("the docker SDK is not installed: pip install docker") from exc
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception:
        return None


@_once
def docker_client() -> Any:
    """A docker SDK client for a running engine; starts `dockerd` (as root) if needed."""
    client = _docker_ping()
    if client is not None:
        return client
    if os.environ.get("DOCKER_HOST"):
        raise ServiceMissing(
            f"Docker Engine at DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer"
        )
    with _machine_lock("dockerd"):
        if not _dockerd_running():
            dockerd = shutil.which("dockerd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
            if not dockerd:
                raise ServiceMissing("Docker Engine not installed: apt-get install -y docker.io")
            if os.geteuid() != 0:
                raise ServiceMissing("no Docker Engine is running, and starting dockerd needs root")
            with DOCKERD_LOG.open("ab") as log:
                subprocess.Popen(
                    [dockerd],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    close_fds=True,
                )
        deadline = time.monotonic() + DOCKERD_WAIT_S
        while time.monotonic() < deadline:
            client = _docker_ping()
            if client is not None:
                return client
            time.sleep(0.5)
    tail = DOCKERD_LOG.read_text(errors="replace")[-2000:] if DOCKERD_LOG.exists() else ""
    raise ServiceMissing(
        f"dockerd did not answer within {DOCKERD_WAIT_S:.0f} s; {DOCKERD_LOG}:\n{tail}"
    )


def _dockerd_running() -> bool:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == "dockerd":
            return True
    return False


def _image_exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _ensure_base(client: Any) -> None:
    if _image_exists(client, BASE_IMAGE):
        return
    if not shutil.which("debootstrap") and not any(
        Path(p).exists() for p in glob.glob("/var/cache/labyard/rootfs-*.tar")
    ):
        raise ServiceMissing(
            f"{BASE_IMAGE} is missing and debootstrap is not installed: "
            "apt-get install -y debootstrap"
        )
    if os.geteuid() != 0:
        raise ServiceMissing(
            f"{BASE_IMAGE} is missing; building it needs root (runner/build-base.sh)"
        )
    if not shutil.which("docker"):
        raise ServiceMissing("the docker CLI is missing: apt-get install -y docker.io")
    _run(["bash", str(RUNNER_DIR / "build-base.sh"), BASE_IMAGE], timeout=900)


def _test_context_digest() -> str:
    digest = hashlib.sha256()
    for name in ("Dockerfile.test", "labyard_job.py"):
        digest.update((RUNNER_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def _test_image_current(client: Any, tag: str) -> bool:
    """labyard/runner:test exists and was built from the current Dockerfile.test and helper."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    labels = image.labels or {}
    return bool(labels.get(CONTEXT_LABEL) == _test_context_digest())


def _build_test_image(client: Any, tag: str) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(RUNNER_DIR / "Dockerfile.test", arcname="Dockerfile")
        tar.add(RUNNER_DIR / "labyard_job.py", arcname="labyard_job.py")
    buf.seek(0)
    try:
        client.images.build(
            fileobj=buf,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            labels={CONTEXT_LABEL: _test_context_digest()},
        )
    except Exception as exc:  # docker.errors.BuildError carries the log
        log = "".join(str(c.get("stream", "")) for c in getattr(exc, "build_log", []) or [])
        raise RuntimeError(f"building {tag} failed: {exc}\n{log[-2000:]}") from exc


@_once
def ensure_image(tag: str = TEST_IMAGE) -> str:
    """Make sure the job image `tag` exists and return it. labyard/runner:test is (re)built
    when missing or older than runner/Dockerfile.test + runner/labyard_job.py (a label holds
    their digest), after labyard/base:bookworm (runner/build-base.sh: debootstrap + docker
    import, no registry). Other tags (labyard/runner:latest) are built by hand."""
    client = docker_client()
    if tag != TEST_IMAGE:
        if _image_exists(client, tag):
            return tag
        raise ServiceMissing(f"image {tag} is missing; see runner/README.md to build it")
    if _test_image_current(client, tag):
        return tag
    with _machine_lock("image"):
        if not _test_image_current(client, tag):
            _ensure_base(client)
            _build_test_image(client, tag)
    return tag


# --------------------------------------------------------------------------- Chromium


@_once
def chromium_path() -> str:
    """Debian's chromium, for Playwright's `executable_path`."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    raise ServiceMissing(f"{CHROMIUM} not found: apt-get install -y chromium")


# --------------------------------------------------------------------------- Slurm


@_once
def slurm_cluster() -> SlurmCluster:
    """The two-node test Slurm cluster on this machine (started as root when not running)."""
    found = slurm.healthy()
    if found is not None:
        return found
    try:
        with _machine_lock("slurm"):
            return slurm.healthy() or slurm.start_cluster()
    except slurm.SlurmMissing as exc:
        raise ServiceMissing(str(exc)) from exc


def _slurm_summary() -> str:
    cluster = slurm_cluster()
    return f"{len(cluster.nodes)} nodes, {cluster.gpus_per_node} GPUs each ({cluster.conf})"


# --------------------------------------------------------------------------- CLI


def _timed(name: str, fn: Callable[[], object]) -> bool:
    start = time.monotonic()
    try:
        result = fn()
    except ServiceMissing as exc:
        print(f"{name}: MISSING: {exc}", file=sys.stderr)
        return False
    print(f"{name}: {result} ({time.monotonic() - start:.1f} s)")
    return True


def ensure_all() -> bool:
    checks: list[tuple[str, Callable[[], object]]] = [
        ("postgres", postgres_url),
        ("docker", lambda: docker_client().version().get("Version")),
        ("image", lambda: ensure_image(TEST_IMAGE)),
        ("chromium", chromium_path),
        ("slurm", _slurm_summary),
    ]
    return all([_timed(name, fn) for name, fn in checks])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands: dict[str, Callable[[], object]] = {
        "postgres": postgres_url,
        "docker": lambda: docker_client().version().get("Version"),
        "image": lambda: ensure_image(TEST_IMAGE),
        "chromium": chromium_path,
        "slurm": _slurm_summary,
    }
    if args == ["ensure-all"]:
        return 0 if ensure_all() else 1
    if len(args) == 1 and args[0] in commands:
        return 0 if _timed(args[0], commands[args[0]]) else 1
    print(f"usage: python -m tests.services ensure-all|{'|'.join(commands)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
