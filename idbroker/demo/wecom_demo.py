"""DEMO ONLY: the demo's WeChat Work corp — kept in a file, and the broker pointed at it by `idbroker demo load`.

- `DemoCorp` — the corp of `wecom_corp` (the documented API), its departments and members saved to
  `var/demo/wecom-corp.json` after every change, so that restarting the demo does not empty it while the
  broker's database still records the members as pushed. Tokens and batch jobs in flight are not kept: after
  a restart the broker fetches a token again (40014) and creates the members of a lost job again.
- `corp_for(settings)` — the corp with the broker's corp ID and contacts secret, but only while the broker is
  pointed at it (`IDBROKER_WECOM_API_BASE` ends in `/demo/wecom/cgi-bin/`): a real corp's secret is never
  taken here; otherwise it takes no credentials at all (gettoken: 40013).
- `snapshot(corp)` — what the page `/demo/wecom` shows, mobiles and emails masked.
- `point_broker_at_demo(env_file, public_url)` — what `idbroker demo load` writes to `var/idbroker.env`:
  a demo corp ID, a random contacts secret and the demo corp's address, where none is configured yet.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idbroker.config import Settings
from idbroker.demo.wecom_corp import Job, WeComCorp

DEMO_PATH = "/demo/wecom"
API_PATH = DEMO_PATH + "/cgi-bin"
STATE_FILE = Path("var/demo/wecom-corp.json")
# Calls that change nothing the file keeps (tokens, uploads and jobs are not kept; a job's end is saved).
READ_ONLY = frozenset(
    {
        "gettoken",
        "media/upload",
        "department/simplelist",
        "department/get",
        "user/get",
        "user/simplelist",
        "user/list",
        "user/list_id",
        "batch/getresult",
    }
)
SETTINGS = ("IDBROKER_WECOM_CORP_ID", "IDBROKER_WECOM_CONTACTS_SECRET", "IDBROKER_WECOM_API_BASE")


@dataclass
class DemoCorp(WeComCorp):
    state_file: Path | None = None
    max_calls: int | None = 200  # the page shows the latest calls

    def __post_init__(self) -> None:
        super().__post_init__()
        self.load()

    def handle(
        self, api: str, query: dict[str, str], body: dict[str, Any], files: dict[str, bytes], *, crowded: bool = False
    ) -> dict[str, Any]:
        answer = super().handle(api, query, body, files, crowded=crowded)
        if answer["errcode"] == 0 and api not in READ_ONLY:
            self.save()
        return answer

    def job_finished(self, job: Job) -> None:
        self.save()

    def load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        with self.lock:
            self.departments = {int(d["id"]): d for d in data.get("departments", [])}
            self.members = {m["userid"].lower(): m for m in data.get("members", [])}
            self.invited = list(data.get("invited", []))
            self.holders = {}
            for member in self.members.values():
                self._index(member, True)

    def save(self) -> None:
        if self.state_file is None:
            return
        with self.lock:
            data = {
                "departments": list(self.departments.values()),
                "members": list(self.members.values()),
                "invited": self.invited,
            }
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.state_file.with_suffix(".tmp")
            partial.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            partial.replace(self.state_file)


def points_at_demo(settings: Settings) -> bool:
    """Whether the broker syncs with the demo corp (its API base is the demo corp's address)."""
    return urlsplit(settings.wecom_api_base).path.rstrip("/") == API_PATH


def corp_for(settings: Settings, state_file: Path | None = STATE_FILE) -> DemoCorp:
    ours = points_at_demo(settings) and settings.wecom_corp_id and settings.wecom_contacts_secret
    return DemoCorp(
        corp_id=(settings.wecom_corp_id or "") if ours else "",
        secret=settings.wecom_contacts_secret.get_secret_value() if ours and settings.wecom_contacts_secret else "",
        name="示例大学（演示）",
        batch_delay=0.5,
        state_file=state_file,
    )


def point_broker_at_demo(env_file: Path, public_url: str) -> str:
    """Add the demo corp's settings to `env_file` unless WeChat Work is configured already (there or in the
    environment). Returns `added`, `demo` (pointed at the demo corp before) or `other` (another corp: kept)."""
    from idbroker.cli.keys import read_assignments

    existing = {**(read_assignments(env_file) if env_file.exists() else {}), **os.environ}
    if any(name in existing for name in SETTINGS):
        base = existing.get("IDBROKER_WECOM_API_BASE", "")
        return "demo" if urlsplit(base).path.rstrip("/") == API_PATH else "other"
    values = {
        "IDBROKER_WECOM_CORP_ID": "wwdemo" + secrets.token_hex(6),
        "IDBROKER_WECOM_CONTACTS_SECRET": secrets.token_urlsafe(32),
        "IDBROKER_WECOM_API_BASE": public_url.rstrip("/") + API_PATH + "/",
    }
    env_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # it holds a secret now
        if env_file.stat().st_size and not env_file.read_bytes().endswith(b"\n"):
            handle.write("\n")
        handle.write("# DEMO ONLY: the demo's WeChat Work corp (/demo/wecom), written by `idbroker demo load`\n")
        handle.writelines(f"{name}={value}\n" for name, value in values.items())
    return "added"


def snapshot(corp: WeComCorp, calls: int = 30) -> dict[str, Any]:
    """What the demo page shows: the tree (parents first), the members (mobiles and emails masked) and the
    latest calls, newest first."""
    from idbroker.contacts.mask import mask_email, mask_phone

    with corp.lock:
        departments = {d["id"]: dict(d) for d in corp.departments.values()}
        members = [dict(m) for m in corp.members.values()]
        latest = list(corp.calls[-calls:])
    counts: dict[int, int] = {}
    for member in members:
        for department in member["department"]:
            counts[department] = counts.get(department, 0) + 1
    tree: list[dict[str, Any]] = []

    def walk(parent: int, depth: int) -> None:
        children = sorted((d for d in departments.values() if d["parentid"] == parent), key=lambda d: d["id"])
        for department in children:
            tree.append({**department, "depth": depth, "members": counts.get(department["id"], 0)})
            walk(department["id"], depth + 1)

    walk(0, 0)
    shown = [
        {
            "userid": m["userid"],
            "name": m["name"],
            "departments": [departments[d]["name"] for d in m["department"] if d in departments],
            "mobile": mask_phone(m["mobile"].replace(" ", "")) if m["mobile"] else "",
            "email": mask_email(m["email"]) if m["email"] else "",
            "status": "disabled" if not m["enable"] else "followed" if m["activated"] else "not_followed",
        }
        for m in sorted(members, key=lambda m: m["userid"])
    ]
    now_wall, now_mono = datetime.now(UTC), time.monotonic()
    shown_calls = [
        {
            "at": (now_wall - timedelta(seconds=now_mono - call.at)).strftime("%H:%M:%S"),
            "api": call.api,
            "errcode": call.errcode,
        }
        for call in reversed(latest)
    ]
    return {"departments": tree, "members": shown, "calls": shown_calls, "configured": bool(corp.corp_id)}
