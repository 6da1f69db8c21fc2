"""`prompt` and `max_age` (OpenID Connect Core §3.1.2.1, §3.1.2.3): when the person must sign in again.

- no sign-in: sign in (or `login_required` with prompt=none);
- prompt=login, or a sign-in older than max_age: sign in again — the request comes back carrying
  `idb_reauth_after` (when it was made), and a sign-in after that time satisfies it;
- prompt=none never shows anything: it answers `login_required` instead of asking.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

MARKER_SECONDS = 600  # an older `idb_reauth_after` is ignored: it cannot stand in for prompt=login later


class Need(Enum):
    NOTHING = "nothing"
    LOGIN = "login"  # show the sign-in
    LOGIN_REQUIRED = "login_required"  # would need to show it, but prompt=none


def login_need(
    *,
    prompt: frozenset[str],
    max_age: int | None,
    auth_time: datetime | None,
    reauth_after: int | None,
    now: datetime,
) -> Need:
    silent = "none" in prompt
    if auth_time is None:
        return Need.LOGIN_REQUIRED if silent else Need.LOGIN
    if reauth_after is not None and now.timestamp() - reauth_after <= MARKER_SECONDS:
        # the request came back from a forced sign-in: only a sign-in after it was made will do
        if int(auth_time.timestamp()) >= reauth_after:
            return Need.NOTHING
        return Need.LOGIN_REQUIRED if silent else Need.LOGIN
    if "login" in prompt:
        return Need.LOGIN
    if max_age is not None and (now - auth_time).total_seconds() > max_age:
        return Need.LOGIN_REQUIRED if silent else Need.LOGIN
    return Need.NOTHING
