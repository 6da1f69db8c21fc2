"""What the operations tests share beyond `services.processes` (`idbroker` commands as real processes, re-exported
here): their JSON log lines, and what a clean stop is.

- `json_lines(log)` — every line of the log parsed as JSON (an assertion names a line that is not JSON).
- `stopped_cleanly(status)` — 0, or the SIGTERM uvicorn re-raises after a graceful shutdown.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from services.processes import environment, log_tail, reap, start, start_server, stop, wait_until

__all__ = ["access_lines", "environment", "json_lines", "log_tail", "reap", "start", "start_server", "stop",
           "stopped_cleanly", "wait_until"]  # fmt: skip


def stopped_cleanly(status: int) -> bool:
    """uvicorn ends its graceful shutdown by re-raising the SIGTERM it caught: a clean stop is that or 0
    (systemd counts both as success)."""
    return status in (0, -signal.SIGTERM)


def json_lines(log: Path) -> list[dict[str, Any]]:
    entries = []
    for number, line in enumerate(log.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"{log.name}:{number} is not JSON: {line[:300]}") from None
        assert isinstance(entry, dict), f"{log.name}:{number} is not a JSON object"
        entries.append(entry)
    return entries


def access_lines(log: Path) -> list[dict[str, Any]]:
    return [entry for entry in json_lines(log) if entry.get("logger") == "idbroker.access"]
