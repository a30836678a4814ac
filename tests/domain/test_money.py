"""Amounts exact to their currency's minor unit: pure, no stack."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.money import MAX_AMOUNT, MoneyError, amount, decimals, excess_decimals


@pytest.mark.parametrize(
    ("currency", "places", "value", "spelt"),
    [
        ("JPY", 0, "1200", "1200"),
        ("EUR", 2, "12.5", "12.50"),
        ("KWD", 3, "1.25", "1.250"),
        ("EUR", 2, "7", "7.00"),
    ],
)
def test_an_amount_has_exactly_its_currencys_decimals(
    currency: str, places: int, value: str, spelt: str
) -> None:
    assert decimals(currency) == places
    assert str(amount(value, currency)) == spelt


@pytest.mark.parametrize(
    ("value", "currency", "reason"),
    [
        ("1.5", "JPY", "not a whole amount of JPY"),
        ("12.345", "EUR", "more decimals than EUR allows \\(2\\)"),
        ("0.0005", "KWD", "more decimals than KWD allows \\(3\\)"),
        ("-1", "EUR", "negative"),
        ("NaN", "EUR", "not a finite number"),
        ("twelve", "EUR", "not a number"),
        (str(MAX_AMOUNT + 1), "EUR", "exceeds the limit"),
        ("1", "XXX", "not an active ISO 4217 code"),
    ],
)
def test_what_a_currency_cannot_hold_is_refused_never_rounded(
    value: str, currency: str, reason: str
) -> None:
    with pytest.raises(MoneyError, match=reason):
        amount(value, currency)


def test_trailing_zeros_are_not_extra_decimals() -> None:
    assert excess_decimals("12.5000", "EUR") is None
    assert excess_decimals("1200.0", "JPY") is None
    assert excess_decimals("12.505", "EUR") == "12.505 has more decimals than EUR allows (2)"


def test_the_limit_itself_is_an_amount_and_one_minor_unit_more_is_not() -> None:
    assert amount(MAX_AMOUNT, "JPY") == MAX_AMOUNT
    assert str(amount(MAX_AMOUNT, "KWD")) == f"{MAX_AMOUNT}.000"
    with pytest.raises(MoneyError, match="exceeds the limit"):
        amount(MAX_AMOUNT + Decimal("0.001"), "KWD")
