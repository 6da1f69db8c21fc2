"""The one refusal of the helpdesk console: a short reason safe to show and log; `code` names the case."""

from __future__ import annotations


class HelpdeskRefused(ValueError):
    """The request cannot be done and nothing was changed; `status` is the HTTP status a router answers with."""

    def __init__(self, code: str, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status
