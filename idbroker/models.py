"""Every table, imported in one place so the metadata (and Alembic) sees them all."""

from sqlmodel import SQLModel

from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.directory.models import Person, SourceRecord
from idbroker.linking.models import KeptApart, MergeCandidate, MergeOperation
from idbroker.sources.models import ImportRun

metadata = SQLModel.metadata

__all__ = [
    "AuditEvent",
    "AuditHead",
    "ImportRun",
    "KeptApart",
    "MergeCandidate",
    "MergeOperation",
    "Person",
    "SourceRecord",
    "metadata",
]
