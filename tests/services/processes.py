"""`idbroker` commands as real processes, for the tests of faults and of operations.

- `environment(url_or_engine, **settings)` — the environment of a separate `idbroker` process: the test's own
  settings (the fixtures put them in the environment), the database URL, and `settings` as `IDBROKER_<NAME>`.
- `start(env, *args, log=…)` — `idbroker ARGS` in a process group of its own, stdout and stderr to `log`;
  `stop(process)` — SIGTERM and the exit status (SIGKILL and a failure if it hangs); `reap(process)` — SIGKILL to
  whatever is left of its process group, without waiting politely.
- `start_server(env, log, *args)` — `idbroker serve` on a free loopback port, once `/health/ready` answers 200.
- `wait_until(condition, what)`, `log_tail(path)`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine

from services.availability import free_port

IDBROKER = [sys.executable, "-m", "idbroker.cli.main"]


def environment(database: Engine | str, **settings: object) -> dict[str, str]:
    url = database if isinstance(database, str) else database.url.render_as_string(hide_password=False)
    env = {**os.environ, "IDBROKER_DATABASE_URL": url}
    env.update({f"IDBROKER_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def start(env: dict[str, str], *args: str, log: Path, command: list[str] | None = None) -> subprocess.Popen[bytes]:
    """Start `idbroker ARGS` (or `command ARGS`) in a process group of its own, so `reap` finds what it started."""
    with log.open("ab") as handle:
        return subprocess.Popen(
            [*(command or IDBROKER), *args], env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, as a service manager stops a service; the exit status (SIGKILL and a failure if it hangs)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            reap(process)
            raise AssertionError(f"process {process.pid} did not stop within {timeout:.0f} s of SIGTERM") from None
    return int(process.returncode)


def reap(process: subprocess.Popen[bytes]) -> None:
    """End the process and anything left of its process group (a pool it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)


def wait_until(condition: Callable[[], bool], what: str, *, timeout: float = 60, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def log_tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no log)"


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def start_server(env: dict[str, str], log: Path, *args: str, port: int | None = None, timeout: float = 90) -> Server:
    """`idbroker serve ARGS` on a loopback port (a new free one unless given), once `/health/ready` answers 200."""
    port = port or free_port()
    process = start(env, "serve", "--port", str(port), *args, log=log)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"idbroker serve exited with {process.returncode}:\n{log_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/health/ready", timeout=2).status_code == 200:
                return server
        if time.monotonic() > deadline:
            reap(process)
            raise AssertionError(f"idbroker serve was not ready after {timeout:.0f} s:\n{log_tail(log)}")
        time.sleep(0.1)
