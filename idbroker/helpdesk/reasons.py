"""Why a helpdesk member looks at or changes a person's data: a ticket number or a call, in words.

The reason goes into the audit log, so it must never carry what the log must not hold: a phone number
or a national ID typed into it is refused with a clear message (name the ticket or the call instead).
"""

from __future__ import annotations

import re

from idbroker.helpdesk.errors import HelpdeskRefused

MAX_REASON = 200
_LOOKS_PERSONAL = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)|\d{17}[\dXx]|\d{15}(?!\d)")


def check_reason(reason: str | None) -> str:
    """The reason, trimmed; refused when empty, too long, or holding a phone number or national ID."""
    text = " ".join((reason or "").split())
    if not text:
        raise HelpdeskRefused("reason_missing", "give a reason: the ticket number or the call")
    if len(text) > MAX_REASON:
        raise HelpdeskRefused("reason_too_long", f"the reason is longer than {MAX_REASON} characters")
    if _LOOKS_PERSONAL.search(text):
        raise HelpdeskRefused(
            "reason_personal", "the reason must not hold a phone number or national ID: name the ticket or call"
        )
    return text
