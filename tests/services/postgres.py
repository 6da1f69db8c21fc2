"""A throwaway PostgreSQL cluster on loopback for one test session (initdb, start, stop, databases).

As root the cluster runs as the `postgres` user (via `runuser`), since PostgreSQL refuses to run as root;
otherwise as the current user. It uses `fsync=off`: it holds test data only and is thrown away at the end.
"""

from __future__ import annotations

import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from services.availability import ServiceUnavailable, free_port, is_root

SERVICE_USER = "postgres"
START_ATTEMPTS = 3


def find_bin_dir() -> Path | None:
    """The newest `/usr/lib/postgresql/*/bin` holding initdb and pg_ctl, else the one on PATH."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.name)] or [0],
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


@dataclass
class PostgresCluster:
    """A running cluster: `base_url` plus a database name is a SQLAlchemy URL."""

    bin_dir: Path
    directory: Path
    port: int
    run_as: str | None
    running: bool = False

    @property
    def base_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/"

    def url(self, database: str) -> str:
        return self.base_url + database

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def _log_tail(self) -> str:
        log = self.directory / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no server log)"

    def initdb(self) -> None:
        result = self._run(
            "initdb",
            "-D",
            str(self.directory / "data"),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.directory / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
        if result.returncode != 0:
            raise ServiceUnavailable(f"PostgreSQL did not start on port {self.port}:\n{self._log_tail()}")
        self.running = True

    def stop(self) -> None:
        """Stop at once (`-m immediate`): the data is thrown away anyway."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
            self.running = False

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m MODE` with the same options (a fault test's own cluster: every client is cut off)."""
        data, log = str(self.directory / "data"), str(self.directory / "server.log")  # -l, or it logs to our pipe
        result = self._run("pg_ctl", "-D", data, "-l", log, "-m", mode, "-w", "-t", "60", "restart")
        if result.returncode != 0:
            raise ServiceUnavailable(f"PostgreSQL did not restart on port {self.port}:\n{self._log_tail()}")

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str, template: str | None = None) -> None:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        with self.connect() as connection:
            if template:
                statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
                if connection.info.server_version >= 150000:
                    # Copying the files is ~3x faster than WAL-logging each block for a small template.
                    statement = sql.SQL("{} STRATEGY FILE_COPY").format(statement)
            connection.execute(statement)

    def drop_database(self, name: str) -> None:
        """Drop even while a forgotten connection is still open (WITH FORCE, PostgreSQL 13+)."""
        with self.connect() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def start_cluster() -> PostgresCluster:
    """initdb into a fresh temporary directory and start on a free loopback port; the caller must stop it."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise ServiceUnavailable("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    run_as = SERVICE_USER if is_root() else None
    # As root, under /tmp: a TMPDIR inside /root would be out of the postgres user's reach.
    directory = Path(tempfile.mkdtemp(prefix="idbroker-pg-", dir="/tmp" if run_as else None))
    if run_as:
        shutil.chown(directory, user=run_as, group=run_as)
    cluster = PostgresCluster(bin_dir=bin_dir, directory=directory, port=free_port(), run_as=run_as)
    try:
        cluster.initdb()
        for attempt in range(START_ATTEMPTS):
            try:
                cluster.start()
                break
            except ServiceUnavailable:
                if attempt == START_ATTEMPTS - 1:
                    raise
                cluster.port = free_port()  # another process may have taken the port in between
    except BaseException:
        remove_cluster(cluster)
        raise
    return cluster


def remove_cluster(cluster: PostgresCluster) -> None:
    """Stop the cluster (if running) and delete its directory."""
    try:
        cluster.stop()
    finally:
        shutil.rmtree(cluster.directory, ignore_errors=True)


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if find_bin_dir() is None:
        return "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)"
    if is_root():
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root but there is no {SERVICE_USER!r} user to run PostgreSQL as"
    return None
