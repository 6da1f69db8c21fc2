"""Every table, imported in one place so the metadata (and Alembic) sees them all."""

from sqlmodel import SQLModel

from idbroker.audit.models import AuditEvent, AuditHead
from idbroker.directory.events import DirectoryEvent
from idbroker.directory.models import Person, SourceRecord
from idbroker.jobs.models import Job
from idbroker.linking.models import KeptApart, MergeCandidate, MergeOperation
from idbroker.sources.models import ImportRun

metadata = SQLModel.metadata

__all__ = [
    "AuditEvent",
    "AuditHead",
    "DirectoryEvent",
    "ImportRun",
    "Job",
    "KeptApart",
    "MergeCandidate",
    "MergeOperation",
    "Person",
    "SourceRecord",
    "metadata",
]
