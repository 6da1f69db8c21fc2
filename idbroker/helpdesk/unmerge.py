"""Un-merging from a person's history: the helpdesk picks a merge in the history and undoes it.

`idbroker.linking.merge.unmerge` does it (the absorbed person gets back its records and ID, the pair is
kept apart for good, audited as `person.unmerge`); here only the reason rule and the refusals the console
shows are added.
"""

from __future__ import annotations

from sqlmodel import Session

from idbroker.helpdesk.errors import HelpdeskRefused
from idbroker.helpdesk.reasons import check_reason
from idbroker.linking.merge import MergeRefused, unmerge
from idbroker.linking.models import MergeOperation


def undo_merge(session: Session, operation_id: int, *, actor: str, reason: str) -> MergeOperation:
    """Undo merge operation `operation_id`, in the caller's transaction."""
    why = check_reason(reason)
    try:
        return unmerge(session, operation_id, actor=actor, reason=why)
    except MergeRefused as exc:
        raise HelpdeskRefused("unmerge_refused", str(exc), status=409) from None
