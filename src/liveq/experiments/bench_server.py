"""The service under test for `liveq bench serve`: a demo model trained on the spot, and
`liveq serve` started in a subprocess on a loopback port (killed with its workers when
the benchmark ends)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from liveq.core.errors import UsageError

DEMO_CONFIG = "livestream_default"
DEMO_STEPS = {True: 400, False: 2000}  # quick / full: the model's size, not its skill


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _liveq(*args: str) -> list[str]:
    return [sys.executable, "-m", "liveq.cli.main", *args]


def _env() -> dict[str, str]:
    """This process's environment with liveq's own source first on the path, so the
    subprocesses run the same code."""
    src = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}


def train_demo_run(out: Path, quick: bool) -> Path:
    """A DQN run on the demo world (its network is the one served; a few steps do)."""
    print(f"liveq bench serve: training a demo model ({DEMO_STEPS[quick]} steps on "
          f"{DEMO_CONFIG})", flush=True)
    done = subprocess.run(_liveq("train", "--config", DEMO_CONFIG, "--out", str(out),
                                 "--steps", str(DEMO_STEPS[quick]), "--no-progress"),
                          env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"training the demo model failed: {done.stderr.strip()[-300:]}")
    return out


class ServerProcess:
    """`liveq serve` in its own process group; a context manager that waits for /healthz
    on entry and stops the group on exit."""

    def __init__(self, run: Path, state_dir: Path, port: int, api_key: str, workers: int = 1,
                 *extra: str):
        self.url = f"http://127.0.0.1:{port}"
        self.log = state_dir.parent / f"serve-{port}.log"
        self.args = _liveq("serve", "--model", str(run), "--state-dir", str(state_dir),
                           "--port", str(port), "--api-key", api_key, "--workers",
                           str(workers), *extra)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=_env(), stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise UsageError(f"liveq serve exited: {self.log.read_text()[-500:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.2)
        self.__exit__()
        raise UsageError(f"liveq serve did not start: {self.log.read_text()[-500:]}")

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the server and its worker processes used so far,
        from Linux's /proc (None elsewhere): per request, a figure the other jobs on a
        busy machine move much less than they move rates."""
        if self.proc is None or not Path("/proc/self/stat").is_file():
            return None
        tick, parents, used = os.sysconf("SC_CLK_TCK"), {}, {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # the process ended while we looked
                    continue
                parents[int(entry.name)] = int(fields[1])
                used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        tree, todo = set(), [self.proc.pid]
        while todo:
            pid = todo.pop()
            tree.add(pid)
            todo += [child for child, parent in parents.items() if parent == pid]
        return sum(used.get(pid, 0.0) for pid in tree)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
