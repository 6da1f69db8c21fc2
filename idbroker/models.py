"""Every table, imported in one place so the metadata (and Alembic) sees them all."""

from sqlmodel import SQLModel

from idbroker.audit.models import AuditCheckpoint, AuditEvent, AuditHead
from idbroker.contacts.models import (
    ContactClaim,
    ContactCursor,
    ContactPoint,
    MessageDelivery,
    PrimaryChoice,
    UpdateLink,
    VerificationFlow,
)
from idbroker.directory.events import DirectoryEvent
from idbroker.directory.models import Person, SourceRecord
from idbroker.helpdesk.models import MergeApproval
from idbroker.jobs.models import Job
from idbroker.keys.models import KeyRotation
from idbroker.linking.models import KeptApart, MergeCandidate, MergeOperation
from idbroker.oidc.models import AuthorizationCode, Grant, SigningKey, Token
from idbroker.release.models import App, Consent, Pseudonym
from idbroker.sources.models import ImportRun
from idbroker.staff.models import StaffRole
from idbroker.web.session import WebSession
from idbroker.wecom.callbacks.intake import WeComCallback
from idbroker.wecom.follow import WeComMemberEvent
from idbroker.wecom.state import WeComBatch, WeComConflict, WeComCursor, WeComDepartment, WeComMember
from idbroker.wecom.token_cache import WeComToken

metadata = SQLModel.metadata

__all__ = [
    "App",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditHead",
    "AuthorizationCode",
    "Consent",
    "ContactClaim",
    "ContactCursor",
    "ContactPoint",
    "DirectoryEvent",
    "Grant",
    "ImportRun",
    "Job",
    "KeptApart",
    "KeyRotation",
    "MergeApproval",
    "MergeCandidate",
    "MergeOperation",
    "MessageDelivery",
    "Person",
    "PrimaryChoice",
    "Pseudonym",
    "SigningKey",
    "SourceRecord",
    "StaffRole",
    "Token",
    "UpdateLink",
    "VerificationFlow",
    "WeComBatch",
    "WeComCallback",
    "WeComConflict",
    "WeComCursor",
    "WeComDepartment",
    "WeComMember",
    "WeComMemberEvent",
    "WeComToken",
    "WebSession",
    "metadata",
]
