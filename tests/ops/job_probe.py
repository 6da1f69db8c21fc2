"""A job queue for the worker-process tests, `ops.probe`: each run of a job appends `<n> <pid>` to a file.

Payload: `n`, `log` (the file), `seconds` (how long the job works first: longer than the lease, only lease
renewal keeps another worker off it), or `kind: hang` and `marker` (the first run writes its pid to `marker`
and hangs until the test kills that worker with SIGKILL; a later run finds the marker and finishes at once).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session

from idbroker.jobs.worker import register

QUEUE = "ops.probe"


def probe(_session: Session, payload: dict[str, Any]) -> None:
    kind = payload.get("kind", "fast")
    if kind == "hang":
        marker = Path(payload["marker"])
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            time.sleep(600)  # until SIGKILL
    else:
        time.sleep(float(payload.get("seconds", 0)))
    with Path(payload["log"]).open("a") as handle:
        handle.write(f"{payload['n']} {os.getpid()}\n")


register(QUEUE, probe)
