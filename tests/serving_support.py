"""Shared set-up of the serving tests: a tiny trained run, a real server in a subprocess,
a throwaway PostgreSQL cluster (Debian's postgresql package, installed when missing)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

API_KEY = "test-admin-key"
SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def train_tiny_run(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "liveq.cli.main", "train", "--config",
                    "livestream_small", "--out", str(out), "--steps", "400", "--no-progress"],
                   check=True, env=env(), capture_output=True)
    return out


class Server:
    """`liveq serve` on a loopback port in a subprocess; `kill()` is SIGKILL."""

    def __init__(self, run: Path, state_dir: Path, db: str | None = None, *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "liveq.cli.main", "serve", "--model", str(run),
                     "--state-dir", str(state_dir), "--port", str(self.port),
                     "--api-key", API_KEY, *extra] + (["--db", db] if db else [])
        self.log = state_dir.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> Server:
        """Start and wait for /healthz (two workers importing torch took 72 s to come up
        at load average 20 on the shared 2-core machine); a server that never answers is
        killed, not left running after the test."""
        try:
            return self._start(timeout)
        except BaseException:
            self.kill()
            raise

    def _start(self, timeout: float) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=env(), stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group (uvicorn and its workers)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def catalogue(n: int, topic_dim: int = 6, seed: int = 0) -> dict:
    rng = random.Random(seed)
    return {"streamers": [
        {"streamer_id": f"s{i}", "topic": [rng.gauss(0, 0.4) for _ in range(topic_dim)],
         "viewers": rng.randint(0, 500), "minutes_live": rng.randint(0, 200),
         "impressions": (imp := rng.randint(0, 1000)), "clicks": (c := rng.randint(0, imp)),
         "watch_share": rng.random() * c, "age_minutes": rng.randint(0, 10_000)}
        for i in range(n)]}


# --- PostgreSQL -----------------------------------------------------------------------
def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def ensure_postgres() -> tuple[Path | None, str]:
    """PostgreSQL's bin folder, installing Debian's package when missing; (None, why)
    when it cannot be had."""
    if _pg_bin() is not None:
        return _pg_bin(), ""
    if shutil.which("apt-get") is None:
        return None, "no PostgreSQL and no apt-get to install it"
    if os.geteuid() != 0:
        return None, "no PostgreSQL, and installing it needs root"
    quiet = {"check": False, "capture_output": True, "text": True,
             "env": {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}}
    subprocess.run(["apt-get", "update"], **quiet)
    done = subprocess.run(["apt-get", "install", "-y", "postgresql"], **quiet)
    if _pg_bin() is None:
        return None, f"apt-get install postgresql failed: {done.stderr.strip()[-300:]}"
    return _pg_bin(), ""


class Postgres:
    """A throwaway cluster in a temporary folder on a free port (as user postgres when run
    as root: initdb refuses root)."""

    def __init__(self, bin_dir: Path):
        self.bin, self.port = bin_dir, free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="liveq-pg-"))
        self.data = self.dir / "data"
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd="/")

    def start(self) -> str:
        if self.as_root:
            shutil.chown(self.dir, "postgres")
            os.chmod(self.dir, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=on -c max_connections=200", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "liveq")
        return f"postgresql://postgres@127.0.0.1:{self.port}/liveq"

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL database's URL; the tests using it skip, saying why, only
    when Debian's postgresql package cannot be had."""
    bin_dir, why = ensure_postgres()
    if bin_dir is None:
        print(f"PostgreSQL tests skipped: {why}")
        pytest.skip(f"PostgreSQL unavailable: {why}")
    cluster = Postgres(bin_dir)
    url = cluster.start()
    yield url
    cluster.stop()


def new_postgres_database(base_url: str) -> str:
    """The URL of a new, empty database in the cluster at `base_url` (a test that
    migrates from an old schema, or must not share rows with other tests)."""
    import uuid

    from sqlalchemy import create_engine

    from liveq.serving.db import normalise_url

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return base_url.rsplit("/", 1)[0] + f"/{name}"
