"""A throwaway OpenLDAP `slapd` on loopback for one test session, with helpers to add and clear people.

The directory has the suffix `dc=example,dc=edu`, people under `ou=people`, the core, cosine, nis and
inetOrgPerson schemas from the system, and the eduPerson schema shipped in `tests/ldap/eduperson.schema`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

with warnings.catch_warnings():
    # ldap3 2.9 imports names that pyasn1 has deprecated (tagMap, typeMap): noise this project cannot fix.
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3

from services.availability import ServiceUnavailable, find_binary, free_port

LDAP_DIR = Path(__file__).resolve().parent.parent / "ldap"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIRS = (Path("/usr/lib/ldap"), Path("/usr/lib/openldap"), Path("/usr/libexec/openldap"))
SBIN_DIRS = (Path("/usr/sbin"), Path("/usr/libexec"))
SUFFIX = "dc=example,dc=edu"
PEOPLE_DN = f"ou=people,{SUFFIX}"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "test-admin-secret"  # a throwaway test directory on loopback
READER_DN = f"cn=idbroker-reader,{SUFFIX}"
READER_PASSWORD = "test-reader-secret"
READER_SIZE_LIMIT = 20  # a plain (unpaged) search by the reader returns at most this many entries
PERSON_CLASSES = ("top", "person", "organizationalPerson", "inetOrgPerson", "eduPerson")

Entry = Mapping[str, str | Sequence[str]]


def missing_reason() -> str | None:
    """Why slapd cannot be started here, or None when it can."""
    for name in ("slapd", "slapadd", "slaptest"):
        if find_binary(name, SBIN_DIRS) is None:
            return f"OpenLDAP {name} is not installed (Debian package slapd)"
    if not (SCHEMA_DIR / "inetorgperson.schema").is_file():
        return f"the OpenLDAP schema files are missing from {SCHEMA_DIR}"
    if _module_dir() is None:
        return "the OpenLDAP back_mdb module is missing"
    return None


def _module_dir() -> Path | None:
    return next((path for path in MODULE_DIRS if any(path.glob("back_mdb*"))), None)


@dataclass
class LdapServer:
    """A running slapd. `location()` is what `idbroker import cas` takes: `ldap://HOST:PORT/BASE-DN`.

    `bind_dn` / `bind_password` are the broker's read-only account (set them as IDBROKER_LDAP_BIND_DN /
    IDBROKER_LDAP_BIND_PASSWORD); it has a size limit of `reader_size_limit` entries per plain search, so
    only a paged search reads more. `admin_dn` / `admin_password` (the rootdn) write; `connect()` uses them.
    """

    host: str
    port: int
    directory: Path
    base_dn: str = SUFFIX
    people_dn: str = PEOPLE_DN
    bind_dn: str = READER_DN
    bind_password: str = READER_PASSWORD
    reader_size_limit: int = READER_SIZE_LIMIT
    admin_dn: str = ROOT_DN
    admin_password: str = ROOT_PASSWORD
    pid: int | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    def location(self, base_dn: str | None = None) -> str:
        return f"{self.url}/{base_dn or self.base_dn}"

    def connect(self) -> ldap3.Connection:
        server = ldap3.Server(self.host, port=self.port, get_info=ldap3.NONE, connect_timeout=10)
        return ldap3.Connection(
            server, user=self.admin_dn, password=self.admin_password, auto_bind=True, receive_timeout=60
        )

    def add_people(self, entries: Iterable[Entry]) -> list[str]:
        """Add inetOrgPerson + eduPerson entries under `ou=people`; each needs `uid` and `cn`.

        Values may be strings or lists (multi-valued). `sn` defaults to the first character of `cn` (the
        surname of a Chinese name). Returns the DNs added.
        """
        added: list[str] = []
        connection = self.connect()
        try:
            for entry in entries:
                attributes = {name: value for name, value in entry.items() if value not in (None, "", [])}
                uid = str(attributes["uid"])
                attributes.setdefault("sn", str(attributes["cn"])[:1])
                dn = f"uid={ldap3.utils.dn.escape_rdn(uid)},{self.people_dn}"
                if not connection.add(dn, list(PERSON_CLASSES), attributes):
                    raise RuntimeError(f"could not add {dn}: {connection.result['description']}")
                added.append(dn)
        finally:
            connection.unbind()
        return added

    def clear(self) -> int:
        """Delete every entry under `ou=people`; returns how many were deleted."""
        connection = self.connect()
        try:
            found = connection.extend.standard.paged_search(
                self.people_dn,
                "(objectClass=*)",
                search_scope=ldap3.LEVEL,
                attributes=[],
                paged_size=1000,
                generator=False,
            )
            dns = [item["dn"] for item in found if item.get("type") == "searchResEntry"]
            for dn in dns:
                if not connection.delete(dn):
                    raise RuntimeError(f"could not delete {dn}: {connection.result['description']}")
        finally:
            connection.unbind()
        return len(dns)

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.02)
        if _alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None


def start_server() -> LdapServer:
    """Write the config, load the base entries with slapadd, start slapd; the caller must `remove_server`."""
    reason = missing_reason()
    if reason:
        raise ServiceUnavailable(reason)
    directory = Path(tempfile.mkdtemp(prefix="idbroker-slapd-"))
    server = LdapServer(host="127.0.0.1", port=free_port(), directory=directory)
    try:
        (directory / "db").mkdir()
        config = directory / "slapd.conf"
        config.write_text(_render("slapd.conf.template", server), encoding="utf-8")
        base = directory / "base.ldif"
        base.write_text(_render("base.ldif.template", server), encoding="utf-8")
        _run_tool("slaptest", "-u", "-f", str(config))
        _run_tool("slapadd", "-q", "-f", str(config), "-l", str(base))
        _start(server, config)
    except BaseException:
        remove_server(server)
        raise
    return server


def remove_server(server: LdapServer) -> None:
    try:
        server.stop()
    finally:
        shutil.rmtree(server.directory, ignore_errors=True)


def _render(template_name: str, server: LdapServer) -> str:
    template = Template((LDAP_DIR / template_name).read_text(encoding="utf-8"))
    return template.substitute(
        schema_dir=SCHEMA_DIR,
        eduperson_schema=LDAP_DIR / "eduperson.schema",
        module_dir=_module_dir(),
        directory=server.directory,
        suffix=server.base_dn,
        dc=server.base_dn.split(",")[0].split("=", 1)[1],
        people_dn=server.people_dn,
        root_dn=server.admin_dn,
        root_password=server.admin_password,
        reader_dn=server.bind_dn,
        reader_cn=server.bind_dn.split(",")[0].split("=", 1)[1],
        reader_password=server.bind_password,
        reader_size_limit=server.reader_size_limit,
    )


def _run_tool(name: str, *args: str) -> None:
    binary = find_binary(name, SBIN_DIRS)
    result = subprocess.run([str(binary), *args], capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise ServiceUnavailable(f"{name} failed: {(result.stderr or result.stdout).strip()}")


def _start(server: LdapServer, config: Path) -> None:
    binary = find_binary("slapd", SBIN_DIRS)
    for attempt in range(3):
        result = subprocess.run(
            [str(binary), "-f", str(config), "-h", f"{server.url}/"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if result.returncode == 0 and _wait_listening(server.host, server.port, server.directory / "slapd.pid"):
            server.pid = int((server.directory / "slapd.pid").read_text().strip())
            return
        if attempt == 2:
            raise ServiceUnavailable(f"slapd did not start on {server.url}: {result.stderr.strip()}")
        server.port = free_port()  # the port may have been taken in between


def _wait_listening(host: str, port: int, pid_file: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_file.exists():
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return True
            except OSError:
                pass
        time.sleep(0.02)
    return False


def _alive(pid: int) -> bool:
    """True while the process runs (a zombie, waiting for a parent that may never reap it, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"
