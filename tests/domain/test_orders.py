"""The order rules of the domain core: pricing, totals, limits, duplicates, replays, transitions.

Pure: no store, no Prefect; each test runs in milliseconds.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from domain.money import MAX_AMOUNT
from domain.orders import (
    CatalogPrice,
    OrderConflict,
    OrderRejected,
    OrderRequest,
    check_replay,
    check_transition,
    order_id_for,
    price_order,
)


def request(quantities: dict[str, int], currency: str = "EUR", **overrides: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "tenant": "acme",
        "customer": {"customer_id": "c-1", "email": "ann@example.com", "name": "Ann"},
        "lines": [{"sku": sku, "quantity": qty} for sku, qty in quantities.items()],
        "currency": currency,
        "idempotency_key": "k-1",
        "payment_reference": "pay-1",
    }
    return OrderRequest.model_validate(fields | overrides)


@pytest.mark.parametrize(
    ("currency", "prices", "quantities", "units", "total"),
    [
        ("JPY", {"A": "1200", "B": "350"}, {"A": 3, "B": 1}, ["1200", "350"], "3950"),
        ("EUR", {"A": "9.5", "B": "4.25"}, {"A": 2, "B": 4}, ["9.50", "4.25"], "36.00"),
        ("KWD", {"A": "1.25", "B": "0.005"}, {"A": 1, "B": 3}, ["1.250", "0.005"], "1.265"),
    ],
)
def test_a_total_is_the_exact_sum_of_its_lines_in_the_currencys_minor_unit(
    currency: str,
    prices: dict[str, str],
    quantities: dict[str, int],
    units: list[str],
    total: str,
) -> None:
    catalog = {sku: CatalogPrice(price, currency) for sku, price in prices.items()}
    priced = price_order(request(quantities, currency), catalog)

    assert [str(line.unit_price) for line in priced.lines] == units
    assert str(priced.total) == total
    assert priced.total == sum(line.unit_price * line.quantity for line in priced.lines)


def test_a_catalog_price_the_currency_cannot_hold_refuses_the_order() -> None:
    reason = r"catalog price of A is not usable: 1\.5 is not a whole amount"
    with pytest.raises(OrderRejected, match=reason):
        price_order(request({"A": 1}, "JPY"), {"A": CatalogPrice("1.5", "JPY")})


def test_a_total_at_the_limit_is_accepted_and_one_cent_more_refused() -> None:
    catalog = {"A": CatalogPrice(str(MAX_AMOUNT - 1), "EUR"), "B": CatalogPrice("1.00", "EUR")}
    priced = price_order(request({"A": 1, "B": 1}), catalog)
    assert priced.total == MAX_AMOUNT
    assert str(priced.total) == f"{MAX_AMOUNT}.00"

    over = {**catalog, "B": CatalogPrice("1.01", "EUR")}
    with pytest.raises(OrderRejected, match=f"exceeds the limit of {MAX_AMOUNT}"):
        price_order(request({"A": 1, "B": 1}), over)


def test_unknown_skus_and_other_currencies_are_refused_naming_them() -> None:
    catalog = {"A": CatalogPrice("1.00", "EUR"), "B": CatalogPrice("1.00", "USD")}
    with pytest.raises(OrderRejected, match="unknown sku\\(s\\) for tenant 'acme': C"):
        price_order(request({"A": 1, "C": 1}), catalog)
    with pytest.raises(OrderRejected, match="order currency is EUR but B is in USD"):
        price_order(request({"A": 1, "B": 1}), catalog)


def test_a_sku_on_two_lines_is_refused_not_merged() -> None:
    lines = [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 1}, {"sku": "A", "quantity": 2}]
    with pytest.raises(ValidationError, match="sku listed on more than one line: A"):
        request({}, lines=lines)


def test_reservations_are_in_sku_order_whatever_the_request_order() -> None:
    catalog = {sku: CatalogPrice("1", "EUR") for sku in "CAB"}
    priced = price_order(request({"C": 1, "A": 2, "B": 3}), catalog)
    assert priced.reservations == [("A", 2), ("B", 3), ("C", 1)]


def test_the_order_id_comes_from_tenant_and_key() -> None:
    priced = price_order(request({"A": 1}), {"A": CatalogPrice("1", "EUR")})
    assert priced.order_id == order_id_for("acme", "k-1")
    assert order_id_for("acme", "k-1") != order_id_for("acme2", "k-1")


def test_a_replay_with_another_body_is_a_conflict_and_the_same_body_is_not() -> None:
    first = request({"A": 1})
    check_replay(first.fingerprint(), request({"A": 1}), "o-1")
    with pytest.raises(OrderConflict, match="already placed order o-1 with a different request"):
        check_replay(first.fingerprint(), request({"A": 2}), "o-1")


def test_placed_becomes_cancelled_once_and_nothing_else() -> None:
    assert check_transition("o-1", "placed", "cancelled") is True
    assert check_transition("o-1", "cancelled", "cancelled") is False
    with pytest.raises(OrderRejected, match="order o-1 is cancelled; it cannot become placed"):
        check_transition("o-1", "cancelled", "placed")


@pytest.mark.parametrize("text", ["Ann\x00Lee", "bad \ud800 surrogate", "bell\x07"])
def test_text_no_store_can_hold_is_refused_naming_the_field(text: str) -> None:
    customer = {"customer_id": "c-1", "email": "a@b.c", "name": text}
    with pytest.raises(ValidationError, match=r"customer\.name"):
        request({"A": 1}, customer=customer)
