"""The audit log: a hash-chained, append-only record of every read and change of a person's data."""

from idbroker.audit.chain import AuditDetailsError, AuditHeadMissingError, append
from idbroker.audit.verify import VerifyReport, verify_chain

__all__ = ["AuditDetailsError", "AuditHeadMissingError", "VerifyReport", "append", "verify_chain"]
