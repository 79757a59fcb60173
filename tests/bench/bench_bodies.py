"""Request-body benchmarks (a script, not a test): what hostile bodies cost a real server.

A real `labyard serve` process (its TMPDIR pointed at a folder we watch) gets:

1. an anonymous `POST /login` with a 1 GiB multipart file part, and a 1 GiB body with a bogus
   session cookie to the dataset upload route: server RSS growth, temp-dir growth, bytes the
   client got to send before the answer;
2. 12,000 multipart fields of 64 KiB from a logged-in user, to a form page and to the
   streaming dataset upload: RSS growth and the answer;
3. 2,000 one-byte parts uploaded in one request into a dataset of 4,000 files, against the
   same upload into an empty dataset (the same-run baseline): linear means a ratio near 1.

Bodies are generated as they are sent, never stored. Baseline for memory: the server's idle
RSS just before each case.

    .venv/bin/python -m tests.bench.bench_bodies [--only hostile|fields|add]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from tests.serving import free_port, wait_until_healthy

PASSWORD = "bench-password-0123456789"
GIB = 1 << 30
BOUNDARY = "benchboundary7MA4YWxkTrZu0gW"


def _start_server(data: Path, tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "LABYARD_DATA_DIR": str(data),
        "LABYARD_ADMIN_PASSWORD": PASSWORD,
        "LABYARD_START_SCHEDULER": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_bodies", "--serve", str(port)], env=env
    )
    return wait_until_healthy(proc, port)


def _serve(port: int) -> None:
    """The server process: the app under uvicorn (tests/serving.py), settings from the env."""
    from labyard.app import create_app
    from labyard.bootstrap import prepare
    from labyard.config import Settings
    from labyard.db import Database
    from tests.serving import serve_on

    settings = Settings()
    database = Database(settings.resolved_database_url)
    prepare(settings, database)
    with serve_on(create_app(settings, database=database), port):
        threading.Event().wait()


def _tmp_bytes(pid: int, folder: Path) -> int:
    """Bytes of the files in `folder` plus those the server holds open there (a spooled
    upload is an unlinked temporary file: only its descriptor shows it)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir() if fds.is_dir() else ():
        try:
            if os.readlink(fd).startswith(str(folder)) and "(deleted)" in os.readlink(fd):
                total += fd.stat().st_size
        except OSError:
            pass
    return total


class Watch:
    """Peak server RSS and temp-dir size while a case runs, against the idle values."""

    def __init__(self, pid: int, tmp: Path) -> None:
        self.proc, self.tmp = psutil.Process(pid), tmp
        self.rss0, self.tmp0 = self.proc.memory_info().rss, _tmp_bytes(pid, tmp)
        self.rss_peak, self.tmp_peak = self.rss0, self.tmp0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            self.rss_peak = max(self.rss_peak, self.proc.memory_info().rss)
            self.tmp_peak = max(self.tmp_peak, _tmp_bytes(self.proc.pid, self.tmp))
            time.sleep(0.05)

    def stop(self) -> str:
        self._done.set()
        self._thread.join()
        return (
            f"server RSS +{(self.rss_peak - self.rss0) / 2**20:.1f} MiB, "
            f"temp dir +{(self.tmp_peak - self.tmp0) / 2**20:.1f} MiB"
        )


def _raw_post(port: int, path: str, headers: dict[str, str], body: Iterator[bytes]) -> str:
    """Send a request on a raw socket; stop sending once the server answers or closes.
    Answer '<status line> after <MiB sent>'."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    sent = 0
    sock.setblocking(False)
    reply = b""
    try:
        for chunk in body:
            view = memoryview(chunk)
            while view:
                with contextlib.suppress(BlockingIOError):
                    reply += sock.recv(65536)
                if reply:
                    raise StopIteration
                try:
                    n = sock.send(view)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                sent += n
                view = view[n:]
    except (StopIteration, ConnectionError):
        pass
    sock.setblocking(True)
    sock.settimeout(120)
    try:
        while b"\r\n" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    except (OSError, TimeoutError):
        pass
    sock.close()
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace") or "(no answer)"
    return f"{status} after {sent / 2**20:.1f} MiB sent"


def _file_part_body(size: int) -> tuple[int, Iterator[bytes]]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    def gen() -> Iterator[bytes]:
        yield head
        block = b"\0" * (1 << 20)
        for _ in range(size // len(block)):
            yield block
        yield tail

    return len(head) + size + len(tail), gen()


def _urlencoded_body(size: int) -> tuple[int, Iterator[bytes]]:
    def gen() -> Iterator[bytes]:
        yield b"username="
        block = b"a" * (1 << 20)
        for _ in range(size // len(block)):
            yield block

    return len(b"username=") + size, gen()


def _fields_body(count: int, size: int) -> tuple[int, Iterator[bytes]]:
    value = b"v" * size
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n'.encode()
        for i in range(count)
    ]
    tail = f"--{BOUNDARY}--\r\n".encode()
    length = sum(len(p) + size + 2 for p in parts) + len(tail)

    def gen() -> Iterator[bytes]:
        for part in parts:
            yield part + value + b"\r\n"
        yield tail

    return length, gen()


def _multipart_headers(length: int, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Content-Length": str(length),
        **extra,
    }


class Client:
    """A logged-in admin: a bearer token, and a browser session with its CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        token = httpx.post(
            f"{base}/api/v1/auth/token",
            data={"grant_type": "password", "username": "admin", "password": PASSWORD},
        ).json()["access_token"]
        self.bearer = {"Authorization": f"Bearer {token}"}
        self.browser = httpx.Client(base_url=base)
        page = self.browser.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        self.browser.post(
            "/login",
            data={"csrf_token": csrf[1], "username": "admin", "password": PASSWORD},
        )
        meta = re.search(r'name="csrf-token" content="([^"]+)"', self.browser.get("/projects").text)
        assert meta is not None
        self.csrf = meta[1]
        self.cookie = "; ".join(f"{k}={v}" for k, v in self.browser.cookies.items())

    def new_dataset(self, name: str) -> int:
        api = f"{self.base}/api/v1"
        project = httpx.get(f"{api}/projects", headers=self.bearer).json()[0]["id"]
        created = httpx.post(
            f"{api}/datasets", json={"name": name, "project_id": project}, headers=self.bearer
        )
        return int(created.json()["id"])


def bench_hostile(port: int, server: int, tmp: Path, size: int) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    bogus = {"Cookie": "labyard_session=bogus"}
    cases = [
        ("anonymous POST /login, urlencoded field", "/login", form, _urlencoded_body),
        ("anonymous POST /login, multipart file part", "/login", {}, _file_part_body),
        ("bogus session cookie POST /projects", "/projects", form | bogus, _urlencoded_body),
    ]
    for label, path, extra, make in cases:
        length, body = make(size)
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **extra}
        headers["Content-Length"] = str(length)
        watch = Watch(server, tmp)
        answer = _raw_post(port, path, headers, body)
        time.sleep(0.5)
        print(f"{label}, {size / 2**20:.0f} MiB: {answer}; {watch.stop()}")


def bench_fields(port: int, server: int, tmp: Path, client: Client, count: int) -> None:
    ds = client.new_dataset("fields")
    cases = [
        ("form page POST /projects", "/projects", {"Cookie": client.cookie}),
        ("dataset upload", f"/api/v1/datasets/{ds}/files", client.bearer),
    ]
    for label, path, auth in cases:
        length, body = _fields_body(count, 64 * 1024)
        watch = Watch(server, tmp)
        headers = _multipart_headers(length, **auth, **{"X-CSRF-Token": client.csrf})
        answer = _raw_post(port, path, headers, body)
        time.sleep(0.5)
        print(f"{label}, {count} fields x 64 KiB: {answer}; {watch.stop()}")


def _upload_parts(client: Client, ds: int, count: int) -> float:
    files = [("file", (f"new-{i}.bin", b"x")) for i in range(count)]
    started = time.perf_counter()
    response = httpx.post(
        f"{client.base}/api/v1/datasets/{ds}/files",
        files=files,
        headers=client.bearer,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text[:300]
    return elapsed


def bench_add(data: Path, client: Client, existing: int, added: int) -> None:
    empty = client.new_dataset("add-empty")
    large = client.new_dataset("add-large")
    folder = data / "datasets" / str(large)
    for i in range(existing):
        sub = folder / f"class{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{i}.bin").write_bytes(b"y")
    base_s = _upload_parts(client, empty, added)
    large_s = _upload_parts(client, large, added)
    print(
        f"{added} one-byte parts: into an empty dataset {base_s:.2f} s, into a "
        f"{existing}-file dataset {large_s:.2f} s -> {large_s / base_s:.2f}x (aim <= 1.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("hostile", "fields", "add"), default=None)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--fields", type=int, default=12_000)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        _serve(args.serve)
        return
    work = Path(tempfile.mkdtemp(prefix="labyard-bench-", dir=os.environ.get("BENCH_DIR")))
    tmp = work / "tmp"
    tmp.mkdir()
    port = free_port()
    server = _start_server(work / "data", tmp, port)
    try:
        client = Client(f"http://127.0.0.1:{port}")
        if args.only in (None, "hostile"):
            bench_hostile(port, server.pid, tmp, args.size_mib << 20)
        if args.only in (None, "fields"):
            bench_fields(port, server.pid, tmp, client, args.fields)
        if args.only in (None, "add"):
            bench_add(work / "data", client, 4000, 2000)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
