"""The helpdesk console's logic: find a person, open a record with a reason, correct contacts on a person's
behalf, resolve the review queue (four eyes where policy asks), un-merge, and watch the queue's health.

No web framework here: `idbroker/web/routers/helpdesk.py` only translates HTTP to these calls.
"""
