"""WeChat Work error codes the broker acts on (developer.work.weixin.qq.com/document/path/90313), and errors."""

from __future__ import annotations

from idbroker.config import MissingKeyError

BUSY = -1
BAD_SECRET = 40001
BAD_CORPID = 40013
INVALID_TOKEN = 40014
TOKEN_MISSING = 41001
TOKEN_EXPIRED = 42001
FREQUENCY_LIMIT = 45009
TOO_MANY_CONCURRENT = 45033
NO_PERMISSION = 48002
IP_RESTRICTED = 48009
DEPARTMENT_NOT_FOUND = 60003
DEPARTMENT_NOT_FOUND_2 = 60123
USERID_EXISTS = 60102
BAD_MOBILE = 60103
MOBILE_EXISTS = 60104
BAD_EMAIL = 60105
EMAIL_EXISTS = 60106
USERID_NOT_FOUND = 60111
BAD_NAME = 60112

TOKEN_ERRORS = frozenset({INVALID_TOKEN, TOKEN_MISSING, TOKEN_EXPIRED})
DEPARTMENT_MISSING = frozenset({DEPARTMENT_NOT_FOUND, DEPARTMENT_NOT_FOUND_2})


class WeComError(RuntimeError):
    """WeChat Work answered with an error code (or could not be reached)."""

    def __init__(self, api: str, errcode: int, errmsg: str) -> None:
        self.api, self.errcode, self.errmsg = api, errcode, errmsg
        super().__init__(f"WeChat Work {api}: error {errcode} ({errmsg})")


class WeComNotConfigured(MissingKeyError):
    """A WeChat Work setting the operation needs is missing or malformed."""
