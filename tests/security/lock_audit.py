"""Known vulnerabilities in `requirements.lock`, from PyPI's advisory data (`make audit`, part of `make test`).

For each pinned release this asks PyPI's JSON API for the release (`/pypi/NAME/VERSION/json`, the data
`pip-audit -s pypi` uses). Where a registry mirror does not serve per-release documents (404, as the one this
project's CI reaches), it asks for the project (`/pypi/NAME/json`), whose advisories are those of the latest
release: exact when the pin is the latest release, and otherwise the pin is listed as not audited (with the
newer version), so an old pin can be moved up and so audited. Any advisory that applies fails the run
(exit 1); a registry that cannot be reached at all fails it too (exit 2). Standard library only.

    python tests/security/lock_audit.py [requirements.lock]
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

PYPI = "https://pypi.org/pypi"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


@dataclass
class Finding:
    name: str
    version: str
    advisories: list[dict[str, object]] = field(default_factory=list)
    audited: bool = True
    latest: str | None = None
    error: str | None = None


def pins(lock: Path) -> list[tuple[str, str]]:
    found = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line.strip())
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def fetch(url: str) -> dict[str, object] | None:
    """The JSON document at `url`, or None for a 404."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # a fixed https://pypi.org URL
            return json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def live(advisories: object) -> list[dict[str, object]]:
    return [a for a in advisories or [] if isinstance(a, dict) and not a.get("withdrawn")]  # type: ignore[union-attr]


def audit(name: str, version: str) -> Finding:
    try:
        release = fetch(f"{PYPI}/{name}/{version}/json")
        if release is not None:
            return Finding(name, version, live(release.get("vulnerabilities")))
        project = fetch(f"{PYPI}/{name}/json")
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        return Finding(name, version, audited=False, error=str(exc))
    if project is None:
        return Finding(name, version, audited=False, error="not on PyPI")
    latest = str(project.get("info", {}).get("version"))  # type: ignore[union-attr]
    if latest != version:
        return Finding(name, version, audited=False, latest=latest)
    return Finding(name, version, live(project.get("vulnerabilities")), latest=latest)


def main(argv: list[str]) -> int:
    lock = Path(argv[1] if len(argv) > 1 else "requirements.lock")
    wanted = pins(lock)
    if not wanted:
        print(f"{lock}: no pinned requirements (NAME==VERSION)", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(8) as pool:
        findings = list(pool.map(lambda pin: audit(*pin), wanted))
    unreachable = [f for f in findings if f.error and f.error != "not on PyPI"]
    if len(unreachable) == len(findings):
        print(f"PyPI could not be reached: {unreachable[0].error}", file=sys.stderr)
        return 2
    vulnerable = [f for f in findings if f.advisories]
    for finding in vulnerable:
        for advisory in finding.advisories:
            fixed = ", ".join(str(v) for v in advisory.get("fixed_in") or []) or "no fix yet"  # type: ignore[union-attr]
            print(f"VULNERABLE {finding.name}=={finding.version}: {advisory.get('id')} (fixed in {fixed})")
    behind = [f for f in findings if not f.audited]
    for finding in behind:
        why = f"latest is {finding.latest}" if finding.latest else finding.error
        print(f"not audited {finding.name}=={finding.version}: {why}")
    audited = len(findings) - len(behind)
    print(f"{lock}: {len(findings)} pins, {audited} audited, {len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
