"""Finding service binaries, and what to do when one is missing: skip locally, fail in CI."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest


class ServiceUnavailable(RuntimeError):
    """A service the test needs cannot be started on this machine."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def is_root() -> bool:
    return os.geteuid() == 0


def missing(reason: str) -> None:
    """Skip the test with `reason` when this user could not install the service; otherwise fail.

    In CI (env CI=true) every service must be present, and root can always install it with .ci/setup.sh, so
    only a non-root developer outside CI gets a skip.
    """
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing service is a failure; run .ci/setup.sh)", pytrace=False)
    if is_root():
        pytest.fail(f"{reason} (you are root: run .ci/setup.sh to install it)", pytrace=False)
    pytest.skip(f"{reason}; ask an administrator to install it (see .ci/setup.sh) to run these tests")


def find_binary(name: str, extra_dirs: tuple[Path, ...] = ()) -> Path | None:
    for directory in extra_dirs:
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    return Path(found) if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
