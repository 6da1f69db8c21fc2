"""Logs as JSON lines on stderr, with no personal data: the one setup `idbroker serve` and `idbroker worker` use.

Each line is one JSON object: `ts` (UTC), `level`, `logger`, `msg`, `pid`, the `request_id` of the request
being served (when there is one), any `extra` fields the caller passed, and `exc` for a traceback.

Callers never log a phone number, national ID, code or token (DESIGN invariant 4); `RedactFilter` is the
safety net for the day one does: it rewrites every message, traceback and text field before it is written —
phone numbers (E.164 and mainland mobiles), 18-digit national IDs, CAS tickets (`ST-…`), JWT-looking strings,
`code=`/`token=`/`ticket=`-style parameters, bearer tokens, email addresses and SQLAlchemy's `[parameters: …]`.
The access log's lines are built from known values only (method, route template, numbers) and pass as they are.

uvicorn's own access log is off: it writes the raw request line, query string included (CAS tickets, codes).
`idbroker.web.access_log` writes ours instead. httpx and httpcore are kept at WARNING for the same reason
(their INFO lines carry request URLs, such as a CAS validation with its ticket).
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The request being served, set by the access-log middleware; every line logged meanwhile carries it.
REQUEST_ID: ContextVar[str | None] = ContextVar("idbroker_request_id", default=None)

REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\[parameters: [^\n]*"), "[parameters: redacted]"),  # SQLAlchemy errors quote bound values
    (re.compile(r"\b(?:ST|PT|PGT|TGT)-[A-Za-z0-9._-]+"), "[ticket]"),  # CAS tickets
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
    (
        re.compile(
            r"(?i)\b(code|ticket|token|access_token|refresh_token|id_token|client_secret|code_verifier|password"
            r"|secret|otp)=[^&\s\"'<>]+"
        ),
        r"\1=[redacted]",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"), "[email]"),
    (re.compile(r"(?<![\w.])\d{17}[\dXx](?!\w)"), "[national-id]"),
    (re.compile(r"\+\d[\d ()-]{6,18}\d"), "[phone]"),  # E.164, also written with spaces or dashes
    (re.compile(r"(?<!\d)1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)"), "[phone]"),  # a mainland mobile, no country code
]

# A text with none of these holds nothing the patterns above match: most lines are let through unscanned.
_SUSPECT = re.compile(r"[0-9@=]|eyJ|bearer|basic", re.IGNORECASE)

# Attributes every LogRecord has: anything else on a record came from `extra=` and is written as a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_SKIPPED = frozenset({"color_message"})  # uvicorn's coloured copy of the message


def redact(text: str) -> str:
    if not _SUSPECT.search(text):
        return text
    for pattern, replacement in REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Rewrites a record's message, traceback and text fields with `redact` (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_built_safe", False):  # the access log: known methods, route templates, numbers
            return True
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module's docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            # uvicorn logs its own life (started, stopping…) as "uvicorn.error" whatever the level: say "uvicorn"
            "logger": "uvicorn" if record.name == "uvicorn.error" else record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _SKIPPED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """The `logging.config.dictConfig` document: for uvicorn's `log_config` (each worker process applies it)
    and for `setup_logging`."""
    quiet = {"level": "WARNING", "handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "idbroker.logs.RedactFilter"}},
        "formatters": {"json": {"()": "idbroker.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["redact"],
            }
        },
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # the raw request line with its query string (CAS tickets, codes): never
            "uvicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "httpx": quiet,
            "httpcore": quiet,
            "sqlalchemy": quiet,
        },
        "root": {"level": level, "handlers": ["stderr"]},
    }


def setup_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for this process (call once, at the start of a long-running command)."""
    logging.config.dictConfig(logging_config(level))
