"""`require_role(...)`: the dependency every staff route declares; checked on the server on each request.

    @router.get("/helpdesk/…")
    def page(login: Annotated[Login, Depends(require_role("helpdesk"))]) -> …

Nobody signed in: a page goes to the login (303), an API gets 401. Signed in without any of the roles: 403
(a page for browsers, JSON for API clients), and the route does not run. Roles are re-read from the
database for every request (`current_login`), so a revoked role stops working at once.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request

from idbroker.staff.roles import ROLES
from idbroker.web.errors import PageError
from idbroker.web.session import Login, require_login


def require_role(*roles: str) -> Callable[..., Login]:
    """A dependency giving the `Login` of a person holding at least one of `roles`."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"require_role needs roles from {ROLES}, got {roles}")
    wanted = frozenset(roles)

    def check(request: Request, login: Login = Depends(require_login)) -> Login:  # noqa: B008
        if not login.roles & wanted:
            raise PageError(403, "error.role")
        return login

    return check
