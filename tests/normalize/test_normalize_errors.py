"""InvalidValue is a ValueError with a readable reason."""

import pytest

from idbroker.normalize import InvalidValue, normalize_phone, parse_national_id


def test_invalid_value_is_a_value_error_with_reason() -> None:
    error = InvalidValue("national ID check digit does not match")
    assert isinstance(error, ValueError)
    assert error.reason == "national ID check digit does not match"
    assert str(error) == error.reason


@pytest.mark.parametrize(
    ("call", "secret"),
    [
        (lambda: parse_national_id("110105198503071231"), "110105198503071231"),
        (lambda: parse_national_id("11010519850307123"), "11010519850307123"),
        (lambda: normalize_phone("12345678901"), "12345678901"),
    ],
)
def test_reasons_never_echo_the_value(call, secret: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        call()
    assert secret not in caught.value.reason
    assert secret[-6:] not in str(caught.value)
