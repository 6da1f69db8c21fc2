"""Staff and their roles: who may use the helpdesk and privacy consoles.

- `models.StaffRole` — one row per (CAS uid, role), with who granted it and when.
- `roles` — `ROLES`, `grant`, `revoke`, `list_grants`, `roles_of` (no web framework; audited).
- `require` — `require_role("helpdesk", …)`, the FastAPI dependency every console route uses.

Roles belong to a CAS uid (the 工号 a staff member signs in with), are checked on the server on every
request, and are re-read each time, so a revoked role stops working at once.
"""
