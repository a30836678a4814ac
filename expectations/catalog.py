"""The GX suite for catalog rows, and the check of one chunk's frame against it.

The frame holds one row per source row, indexed by its line number (CSV/JSONL) or row number
(Parquet), so GX's `unexpected_index_list` names the offending lines directly. Every expectation
carries the field it judges and a reason an operator can act on in its `meta`; a row that fails
several expectations on one field is reported with the first, so a missing price says "missing"
rather than also "not a number". Prices and stock reach GX as text, the way the file wrote them,
so "12,50" is rejected as not a number instead of being parsed into something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import pyarrow as pa

from domain.catalog import TEXT_COLUMNS
from domain.codes import SKU_PATTERN
from domain.money import CURRENCIES
from expectations.validation import FrameSuite

PRICE_PATTERN = r"^[0-9]{1,12}(?:\.[0-9]{1,4})?$"
STOCK_PATTERN = r"^[0-9]{1,9}$"
CATEGORY_PATTERN = r"^[^/]+(?:/[^/]+){0,7}$"
CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
NAME_MAX = 300
DESCRIPTION_MAX = 10_000
CATEGORY_MAX = 300
ATTRIBUTES_MAX_BYTES = 16_384
TAGS_MAX = 50
TAG_MAX_LENGTH = 64


def _expect(
    expectation: type[gxe.Expectation], field: str, reason: str, **kwargs: Any
) -> gxe.Expectation:
    return expectation(meta={"field": field, "reason": reason}, **kwargs)


def _present(column: str) -> gxe.Expectation:
    return _expect(gxe.ExpectColumnValuesToNotBeNull, column, f"{column} is missing", column=column)


def _not_longer(column: str, limit: int) -> gxe.Expectation:
    reason = f"{column} is longer than {limit} characters"
    return _expect(
        gxe.ExpectColumnValueLengthsToBeBetween, column, reason, column=column, max_value=limit
    )


def _matching(column: str, regex: str, reason: str) -> gxe.Expectation:
    return _expect(gxe.ExpectColumnValuesToMatchRegex, column, reason, column=column, regex=regex)


def _plain_text(column: str) -> gxe.Expectation:
    reason = f"{column} contains control characters"
    return _expect(
        gxe.ExpectColumnValuesToNotMatchRegex,
        column,
        reason,
        column=column,
        regex=CONTROL_CHARACTERS,
    )


def _at_most(column: str, field: str, limit: int, reason: str) -> gxe.Expectation:
    return _expect(gxe.ExpectColumnValuesToBeBetween, field, reason, column=column, max_value=limit)


def _expectations() -> list[gxe.Expectation]:
    return [
        _present("sku"),
        _matching(
            "sku",
            SKU_PATTERN,
            "sku must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ),
        _present("name"),
        _not_longer("name", NAME_MAX),
        _plain_text("name"),
        _not_longer("description", DESCRIPTION_MAX),
        _plain_text("description"),
        _not_longer("category", CATEGORY_MAX),
        _matching(
            "category",
            CATEGORY_PATTERN,
            "category must be 1-8 non-empty segments separated by '/', like 'kitchen/kettles'",
        ),
        _plain_text("category"),
        _present("price"),
        _expect(
            gxe.ExpectColumnValuesToNotBeNull,
            "price",
            "price is not a number",
            column="price_value",
        ),
        _expect(
            gxe.ExpectColumnValuesToBeBetween,
            "price",
            "price must be greater than 0",
            column="price_value",
            min_value=0,
            strict_min=True,
        ),
        _matching(
            "price",
            PRICE_PATTERN,
            "price must be a plain decimal number with at most 12 "
            "digits before the point and 4 after it, like 12.50",
        ),
        _present("currency"),
        _expect(
            gxe.ExpectColumnValuesToBeInSet,
            "currency",
            "currency is not an active ISO 4217 code",
            column="currency",
            value_set=sorted(CURRENCIES),
        ),
        _matching("stock", STOCK_PATTERN, "stock must be a whole number from 0 to 999999999"),
        _at_most(
            "attributes_size",
            "attributes",
            ATTRIBUTES_MAX_BYTES,
            f"attributes are larger than {ATTRIBUTES_MAX_BYTES} bytes of JSON",
        ),
        _at_most("tag_count", "tags", TAGS_MAX, f"more than {TAGS_MAX} tags"),
        _at_most(
            "tag_max_length",
            "tags",
            TAG_MAX_LENGTH,
            f"a tag is longer than {TAG_MAX_LENGTH} characters",
        ),
        _plain_text("tags"),
    ]


def product_suite() -> gx.ExpectationSuite:
    """The expectations every catalog row must meet, in the order their reasons take priority."""
    return gx.ExpectationSuite(name="catalog_products", expectations=_expectations())


PRODUCT_ROWS = FrameSuite("catalog", product_suite)


def product_frame(rows: Mapping[int, Mapping[str, Any]]) -> pd.DataFrame:
    """The frame GX validates, from canonical rows keyed by line number.

    A canonical row has the text columns (None when absent, prices and stock as text), `tags`
    (a list of str) and `attributes_size` (bytes of canonical JSON); tags become numbers GX can
    compare.
    """
    tags = [row["tags"] for row in rows.values()]
    frame = pd.DataFrame(
        {
            **{column: [row[column] for row in rows.values()] for column in TEXT_COLUMNS},
            "tags": ["|".join(row_tags) or None for row_tags in tags],
            "attributes_size": [row["attributes_size"] for row in rows.values()],
            "tag_count": [len(row_tags) for row_tags in tags],
            "tag_max_length": [max(map(len, row_tags), default=0) for row_tags in tags],
        },
        index=list(rows),
    )
    frame["price_value"] = pd.to_numeric(frame["price"], errors="coerce")
    return frame


@dataclass(frozen=True)
class FrameValidation:
    """Which rows passed, and for each failed row (by index) its fields and their reasons."""

    valid: pd.Series
    failures: dict[int, dict[str, str]]


def validate_product_frame(frame: pd.DataFrame) -> FrameValidation:
    """Validate a frame built by `product_frame`.

    Outcomes are read in suite order. An expectation that could not run is a bug, not bad data:
    it raises rather than pass rows.
    """
    outcomes = PRODUCT_ROWS.outcomes(frame, result_format="COMPLETE")
    # pandas' str columns live in Arrow's memory pool, which keeps what it freed for reuse: hand
    # it back, or a long file's RSS carries the peak of every chunk's string work.
    pa.default_memory_pool().release_unused()
    failures: dict[int, dict[str, str]] = {}
    for outcome in outcomes:
        lines = outcome.result.get("unexpected_index_list")
        if not outcome.success and not lines:
            raise RuntimeError(
                f"{outcome.expectation_config.type} on {outcome.expectation_config.kwargs} "
                f"could not run: {_errors(outcome.exception_info)}"
            )
        meta = outcome.expectation_config.meta
        for line in lines or ():
            failures.setdefault(line, {}).setdefault(meta["field"], meta["reason"])
    valid = pd.Series(~frame.index.isin(list(failures)), index=frame.index)
    return FrameValidation(valid=valid, failures=failures)


def _errors(exception_info: dict[str, Any]) -> str:
    """The messages GX recorded, at the top level or per metric."""
    infos = [exception_info, *exception_info.values()]
    return "; ".join(
        str(info.get("exception_message"))
        for info in infos
        if isinstance(info, dict) and info.get("raised_exception")
    )
