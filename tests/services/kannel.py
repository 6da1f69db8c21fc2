"""Kannel from Debian on loopback: `bearerbox`, `smsbox` (the HTTP sendsms interface) and the fake SMSC.

The fake SMSC (`/usr/lib/kannel/test/fakesmsc`, package kannel-extras) connects to bearerbox and logs every
message it receives: `Got message N: <from to type data>`, where `type` is `text` or `ucs-2` and `data` is
URL-encoded — for `ucs-2` URL-encoded UTF-16 big-endian bytes, which `read_messages` decodes. A long message
arrives in parts: `<from to udh UDH data DATA>`, the UDH naming the concatenation reference, the number of
parts and this part's place (`05 00 03 ref total seq`); `read_messages` joins complete messages.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes

import httpx

from services.availability import ServiceUnavailable, find_binary, free_port

FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
USERNAME = "idbroker-test"
PASSWORD = "kannel-test-secret"  # a throwaway gateway on loopback
ADMIN_PASSWORD = "kannel-admin-secret"
SENDER = "10690000"
_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) ?(.*)>\s*$")

CONFIG = """\
group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = {admin_password}
smsbox-port = {smsbox}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 1

group = smsc
smsc = fake
smsc-id = fake
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
global-sender = {sender}
log-file = "{dir}/smsbox.log"
log-level = 1

group = sendsms-user
username = {username}
password = {password}
max-messages = 3
concatenation = true

group = sms-service
keyword = default
text = "no service"
"""


def missing_reason() -> str | None:
    for name in ("bearerbox", "smsbox"):
        if find_binary(name) is None:
            return f"Kannel {name} is not installed (Debian package kannel)"
    if not FAKESMSC.is_file():
        return f"{FAKESMSC} is not installed (Debian package kannel-extras)"
    return None


@dataclass(frozen=True)
class SmscMessage:
    sender: str
    to: str
    kind: str  # text | ucs-2 | data
    text: str


def decode(kind: str, data: str) -> str:
    if kind == "ucs-2":
        return unquote_to_bytes(data).decode("utf-16-be")
    return unquote(data)


@dataclass
class Kannel:
    directory: Path
    sendsms_port: int
    admin_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    since: int = 0  # the log offset the current test reads from (`forget`)
    smsc_port: int = 0

    @property
    def config(self) -> Path:
        return self.directory / "kannel.conf"

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def smsc_log(self) -> Path:
        return self.directory / "fakesmsc.log"

    def read_messages(self) -> list[SmscMessage]:
        """Everything the fake SMSC has received so far, decoded; parts of long messages joined."""
        messages = []
        parts: dict[tuple[str, str, int], dict[int, bytes]] = {}
        text = self.smsc_log.read_bytes()[self.since :].decode(errors="replace") if self.smsc_log.exists() else ""
        for line in text.splitlines():
            match = _GOT.search(line)
            if not match:
                continue
            sender, to, kind, data = match.groups()
            if kind != "udh":
                messages.append(SmscMessage(sender, to, kind, decode(kind, data)))
                continue
            header_text, _, payload = data.partition(" data ")
            header = unquote_to_bytes(header_text)
            ref, total, seq = header[3], header[4], header[5]  # 05 00 03 ref total seq (8-bit reference)
            pieces = parts.setdefault((sender, to, ref), {})
            pieces[seq] = unquote_to_bytes(payload)
            if len(pieces) == total:
                joined = b"".join(pieces[i] for i in sorted(pieces))
                messages.append(SmscMessage(sender, to, "ucs-2", joined.decode("utf-16-be")))
                del parts[(sender, to, ref)]
        return messages

    def forget(self) -> None:
        """From now on read only what arrives next (each test starts with an empty fake SMSC)."""
        self.since = self.smsc_log.stat().st_size if self.smsc_log.exists() else 0

    def wait_for(self, to: str, *, count: int = 1, timeout: float = 15.0) -> list[SmscMessage]:
        """The messages to `to` once at least `count` have arrived at the fake SMSC."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.read_messages() if m.to == to]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"the fake SMSC got {len(found)} message(s) to that number, expected {count}")
            time.sleep(0.05)

    def status(self) -> str:
        url = f"http://127.0.0.1:{self.admin_port}/status.txt"
        return httpx.get(url, params={"password": ADMIN_PASSWORD}, timeout=5).text

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()

    def down(self) -> None:
        """Take the whole gateway down (bearerbox, smsbox, fake SMSC): `sendsms` refuses connections."""
        self.stop()

    def up(self) -> None:
        """Start the same gateway again, on the same ports, after `down`; the fake SMSC log keeps what it had."""
        _launch(self)


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-1500:] if path.exists() else "(no log)"


def start_kannel() -> Kannel:
    directory = Path(tempfile.mkdtemp(prefix="idbroker-kannel-"))
    admin, smsbox, smsc, sendsms = free_port(), free_port(), free_port(), free_port()
    config = directory / "kannel.conf"
    config.write_text(
        CONFIG.format(
            admin=admin,
            admin_password=ADMIN_PASSWORD,
            smsbox=smsbox,
            smsc=smsc,
            sendsms=sendsms,
            sender=SENDER,
            username=USERNAME,
            password=PASSWORD,
            dir=directory,
        )
    )
    kannel = Kannel(directory, sendsms, admin, smsc_port=smsc)
    _launch(kannel)
    return kannel


def _launch(kannel: Kannel) -> None:
    """Start bearerbox, smsbox and the fake SMSC of `kannel`'s config; wait until the SMSC is online."""
    directory, config = kannel.directory, kannel.config

    def spawn(args: list[str], log: str) -> None:
        handle = (directory / log).open("ab")  # appended: a restarted gateway keeps its earlier log
        kannel.processes.append(subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, cwd=directory))

    try:
        spawn([str(find_binary("bearerbox")), str(config)], "bearerbox.out")
        _wait_port(kannel.admin_port, "bearerbox", directory / "bearerbox.out")
        spawn([str(find_binary("smsbox")), str(config)], "smsbox.out")
        _wait_port(kannel.sendsms_port, "smsbox", directory / "smsbox.out")
        spawn(
            [str(FAKESMSC), "-H", "127.0.0.1", "-r", str(kannel.smsc_port), "-i", "1", "-m", "0", "100 200 text nop"],
            "fakesmsc.log",
        )
        deadline = time.monotonic() + 20
        while "online" not in kannel.status().split("SMSC connections:")[-1]:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    "the fake SMSC did not come online:\n" + _log_tail(directory / "bearerbox.log")
                )
            time.sleep(0.1)
    except BaseException:
        kannel.stop()
        raise


def _wait_port(port: int, what: str, log: Path, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"Kannel {what} did not open port {port}:\n{_log_tail(log)}")
        time.sleep(0.05)
