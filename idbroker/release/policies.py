"""Release policies: `policies/apps/<client_id>.yaml`, what an operator allows one app to receive.

A policy names the claims the app may ever receive, the purpose in words (shown to the person), whether
the person's separate consent is required first (PIPL Art. 23, with the recipient named), and whether the
app may look a person up by a number it already holds. It is validated at load by `idbroker.policy`
(errors read `file:line: what`); a policy is read again when its file changes.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from idbroker.policy import PolicyError, load_policy

ClaimName = Literal[
    "pseudonym",
    "nickname",
    "name",
    "affiliation",
    "degree_level",
    "department",
    "student_number",
    "staff_number",
    "phone",
    "email",
]
CLAIM_NAMES: tuple[str, ...] = ClaimName.__args__  # type: ignore[attr-defined]
CLIENT_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,58}[a-z0-9]$"  # ≤ 60, so `app:<id>` fits the audit actor


class Recipient(BaseModel):
    """Who receives the data, as the person is told before a separate consent (PIPL Art. 23)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=2, max_length=200)
    contact: str = Field(min_length=3, max_length=200)


class AppPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(pattern=CLIENT_ID_PATTERN)
    purpose: str = Field(min_length=2, max_length=500, description="Why the app receives data, in words.")
    purpose_en: str | None = Field(default=None, max_length=500)
    claims: tuple[ClaimName, ...] = Field(min_length=1)
    separate_consent: bool = False
    recipient: Recipient | None = None
    lookup_by_number: bool = False
    nickname_is_real_name: bool = False

    @field_validator("claims")
    @classmethod
    def _claims_once_each(cls, claims: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({claim for claim in claims if claims.count(claim) > 1})
        if repeated:
            raise ValueError(f"claim listed twice: {', '.join(repeated)}")
        if "pseudonym" not in claims:
            raise ValueError("every app identifies people by their pseudonym: add `pseudonym` to claims")
        return claims

    @field_validator("client_id")
    @classmethod
    def _named_like_its_file(cls, client_id: str, info: ValidationInfo) -> str:
        expected = (info.context or {}).get("client_id")
        if expected is not None and client_id != expected:
            raise ValueError(f"this file is the policy of {expected!r}, not {client_id!r}")
        return client_id

    @model_validator(mode="after")
    def _consent_names_the_recipient(self) -> AppPolicy:
        if self.separate_consent and self.recipient is None:
            raise ValueError("separate_consent needs a `recipient` (name, contact) to show the person")
        if self.nickname_is_real_name and "name" not in self.claims:
            raise ValueError("nickname_is_real_name releases the real name: `name` must be in claims too")
        return self

    @property
    def purpose_digest(self) -> str:
        """Changes whenever what the person consented to changes (purpose, claims, recipient)."""
        text = "\x00".join([self.purpose, ",".join(sorted(self.claims)), repr(self.recipient)])
        return hashlib.sha256(text.encode()).hexdigest()


def policy_path(policies_dir: Path, client_id: str) -> Path:
    return policies_dir / "apps" / f"{client_id}.yaml"


def load_app_policy(path: Path) -> AppPolicy:
    """Read and validate one policy file; `PolicyError` (`file:line: what`) when it cannot be used."""
    return load_policy(path, AppPolicy, context={"client_id": path.stem})


STAT_SECONDS = 1.0  # a changed policy file is noticed within this long
_checked: dict[Path, tuple[float, AppPolicy]] = {}


def policy_for(policies_dir: Path, client_id: str) -> AppPolicy:
    """The current policy of an app, read again only when its file changed (looked at once a second)."""
    path = policy_path(policies_dir, client_id)
    now = time.monotonic()
    seen = _checked.get(path)
    if seen is not None and now - seen[0] < STAT_SECONDS:
        return seen[1]
    try:
        stat = path.stat()
    except OSError:
        _checked.pop(path, None)
        raise PolicyError(path, None, f"app {client_id!r} has no release policy: write {path}") from None
    policy = _cached(path, stat.st_mtime_ns, stat.st_size)
    _checked[path] = (now, policy)
    return policy


@lru_cache(maxsize=512)
def _cached(path: Path, _mtime_ns: int, _size: int) -> AppPolicy:
    return load_app_policy(path)
