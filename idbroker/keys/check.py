"""The start-up check: every key a serving or working process needs is present and long enough.

`idbroker serve`, `idbroker worker` and the app's start-up (`create_app`'s lifespan) call it before they
accept any work, so a missing or short key stops the process with a message naming the variable, instead
of failing the first request that needs the key.
"""

from __future__ import annotations

from idbroker.config import Settings
from idbroker.keys.keyring import ENCRYPTION, HASH, PSEUDONYM, keyring


class KeyConfigurationError(RuntimeError):
    """A key is missing, malformed or too short."""


def check_keys(settings: Settings) -> None:
    problems: list[str] = []
    for kind in (HASH, ENCRYPTION, PSEUDONYM):
        try:
            keyring(settings, kind)
        except (RuntimeError, ValueError) as exc:  # MissingKeyError, or a short or malformed key
            if str(exc) not in problems:
                problems.append(str(exc))
    if problems:
        raise KeyConfigurationError("idbroker cannot start: " + "; ".join(problems))
