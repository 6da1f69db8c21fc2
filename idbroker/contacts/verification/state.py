"""The states of a verification flow and what each answer to a submission means.

    sent ──right code / link──► passed          (the value is verified; the flow is spent)
      │ ──wrong code × N──────► burned          (no more tries: ask for a new code)
      │ ──a newer code sent───► superseded      (one active code per purpose)
      └ ──time passes─────────► (expired: `sent` past `expires_at`, nothing stored)

Every outcome but `verified` changes no contact: it is a clear refusal with its own message.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    SENT = "sent"
    PASSED = "passed"
    BURNED = "burned"
    SUPERSEDED = "superseded"


class Outcome(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"  # a wrong code; tries are left
    BURNED = "burned"  # too many wrong codes: this code is dead
    EXPIRED = "expired"
    USED = "used"  # the code or link was already used (a replay)
    SUPERSEDED = "superseded"  # a newer code was sent for the same purpose
    NOT_FOUND = "not_found"  # no such flow for this person (or another person's flow)
    LOCKED = "locked"  # too many wrong codes for this person today
    MALFORMED = "malformed"  # not a code at all (wrong length, not digits)


MESSAGES = {
    Outcome.VERIFIED: "verified",
    Outcome.WRONG: "the code is wrong; check it and try again",
    Outcome.BURNED: "too many wrong tries: this code no longer works, ask for a new one",
    Outcome.EXPIRED: "the code has expired: ask for a new one",
    Outcome.USED: "this code was already used",
    Outcome.SUPERSEDED: "a newer code was sent: use the latest one",
    Outcome.NOT_FOUND: "no such verification for you: ask for a new code",
    Outcome.LOCKED: "too many wrong codes today: try again tomorrow or call the helpdesk",
    Outcome.MALFORMED: "a code is 6 digits",
}
