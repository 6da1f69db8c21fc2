"""The one error type raised by the normalizers.

`InvalidValue` is a `ValueError` whose `.reason` is a short English sentence that is safe to log and show:
it never repeats the offending national ID, phone number or email address.
"""


class InvalidValue(ValueError):
    """A value that cannot be normalized; `.reason` says why without echoing the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
