from __future__ import annotations

from typing import Any

import pytest

from expectations.catalog import (
    CURRENCIES,
    product_frame,
    product_suite,
    validate_product_frame,
)


def row(**changes: Any) -> dict[str, Any]:
    """A canonical row that passes every expectation, with `changes` applied."""
    base: dict[str, Any] = {
        "sku": "KET-001",
        "name": "Steel kettle",
        "description": None,
        "category": "kitchen/kettles",
        "price": "39.90",
        "currency": "EUR",
        "stock": None,
        "tags": ["steel"],
        "attributes_size": 2,
    }
    return {**base, **changes}


def failures_of(**changes: Any) -> dict[str, str]:
    result = validate_product_frame(product_frame({7: row(**changes)}))
    return result.failures.get(7, {})


def test_every_expectation_says_which_field_and_why() -> None:
    metas = [expectation.meta for expectation in product_suite().expectations]

    assert {meta["field"] for meta in metas} == {
        "sku",
        "name",
        "description",
        "category",
        "price",
        "currency",
        "stock",
        "attributes",
        "tags",
    }
    assert all(meta["reason"] for meta in metas)


def test_a_good_row_passes() -> None:
    result = validate_product_frame(product_frame({2: row(), 3: row(sku="KET-002", stock="0")}))

    assert result.failures == {}
    assert result.valid.tolist() == [True, True]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sku": None}, {"sku": "sku is missing"}),
        (
            {"sku": '{"$gt": ""}'},
            {
                "sku": "sku must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            },
        ),
        (
            {"sku": "A" * 65},
            {
                "sku": "sku must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            },
        ),
        ({"name": None}, {"name": "name is missing"}),
        ({"name": "N" * 301}, {"name": "name is longer than 300 characters"}),
        ({"name": "tab\tis fine, bell\x07 is not"}, {"name": "name contains control characters"}),
        (
            {"description": "D" * 10_001},
            {"description": "description is longer than 10000 characters"},
        ),
        (
            {"category": "a/b/c/d/e/f/g/h/i"},
            {
                "category": "category must be 1-8 non-empty "
                "segments separated by '/', like 'kitchen/kettles'"
            },
        ),
        (
            {"category": "kitchen//kettles"},
            {
                "category": "category must be 1-8 non-empty "
                "segments separated by '/', like 'kitchen/kettles'"
            },
        ),
        ({"price": None}, {"price": "price is missing"}),
        ({"price": "twelve"}, {"price": "price is not a number"}),
        ({"price": "-1"}, {"price": "price must be greater than 0"}),
        ({"price": "0.00"}, {"price": "price must be greater than 0"}),
        (
            {"price": "1.23456"},
            {
                "price": "price must be a plain decimal number with at most 12 "
                "digits before the point and 4 after it, like 12.50"
            },
        ),
        ({"currency": None}, {"currency": "currency is missing"}),
        ({"currency": "XAU"}, {"currency": "currency is not an active ISO 4217 code"}),
        ({"stock": "-2"}, {"stock": "stock must be a whole number from 0 to 999999999"}),
        ({"stock": "1.5"}, {"stock": "stock must be a whole number from 0 to 999999999"}),
        (
            {"attributes_size": 16_385},
            {"attributes": "attributes are larger than 16384 bytes of JSON"},
        ),
        ({"tags": [f"t{i}" for i in range(51)]}, {"tags": "more than 50 tags"}),
        ({"tags": ["T" * 65]}, {"tags": "a tag is longer than 64 characters"}),
        (
            {"sku": None, "price": "-3", "currency": "XXX"},
            {
                "sku": "sku is missing",
                "price": "price must be greater than 0",
                "currency": "currency is not an active ISO 4217 code",
            },
        ),
    ],
)
def test_each_failure_names_the_field_with_its_first_reason(
    changes: dict[str, Any], expected: dict[str, str]
) -> None:
    assert failures_of(**changes) == expected


def test_failures_map_back_to_the_line_numbers_in_the_index() -> None:
    frame = product_frame({2: row(), 9: row(price="-1"), 40: row(sku="x" * 70), 41: row()})

    result = validate_product_frame(frame)

    assert sorted(result.failures) == [9, 40]
    assert result.valid.to_dict() == {2: True, 9: False, 40: False, 41: True}


def test_the_context_is_reused_across_chunks() -> None:
    for _ in range(3):
        assert failures_of(price="0") == {"price": "price must be greater than 0"}


def test_currencies_are_active_iso_4217_codes_a_price_can_be_in() -> None:
    assert {"EUR", "USD", "JPY", "CHF", "GBP", "XOF"} <= CURRENCIES
    assert not {"XXX", "XTS", "XAU", "XDR", "BOV", "HRK", "usd"} & CURRENCIES
    assert all(len(code) == 3 and code.isupper() for code in CURRENCIES)


def test_an_expectation_that_cannot_run_raises_instead_of_passing_rows() -> None:
    frame = product_frame({2: row()}).drop(columns=["name"])

    with pytest.raises(RuntimeError, match='The column "name" in BatchData does not exist'):
        validate_product_frame(frame)
