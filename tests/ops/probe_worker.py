"""`idbroker worker ARGS` with the test queue `ops.probe` registered (tests/ops/job_probe.py): the real command
in a real process, run as a script by test_ops_workers.py."""

from __future__ import annotations

import sys

import job_probe  # noqa: F401  (registers the ops.probe queue)

from idbroker.cli.main import app

if __name__ == "__main__":
    app(["worker", *sys.argv[1:]])
