"""The one refusal of the contacts domain: a short reason safe to show and log, never echoing a value."""

from __future__ import annotations


class ContactRefused(ValueError):
    """The request cannot be done; nothing was changed. `code` names the case (pages translate it),
    `status` is the HTTP status a router answers with, `retry_after` (seconds) when waiting helps."""

    def __init__(self, code: str, reason: str, *, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
