"""Catalog products and rejects, and how one source row becomes canonical values.

The same conventions hold for CSV, JSONL and Parquet, so the same product gets the same values,
and the same content hash, from any of them:

- column names match case-insensitively, surrounding spaces ignored; other columns are ignored,
  a `tenant` column included: the tenant is the run's, so a file cannot write into another tenant;
- text is stripped, line breaks in it become "\n" (a Windows-edited CSV has "\r\n"), and empty
  text is a missing value; numbers are accepted where text is expected (a numeric sku column
  in Parquet) and spelt without exponent or trailing ".0";
- `tags` is one '|'-separated string (JSONL and Parquet may also give a list of strings); tags
  are stripped, empty ones dropped and repeats removed, order kept. '|' rather than ',' because
  commas are common inside tag text and would force quoting in CSV;
- `attributes` is a JSON object (in CSV, and optionally in JSONL and Parquet, as JSON text) with
  keys of letters, digits, spaces, '_' or '-' (no '$' or '.', which MongoDB and Elasticsearch
  read as operators and paths) and values that are text, numbers, true/false, null or lists of
  those: what every store, Neo4j properties included, holds as is;
- `currency` is upper-cased; `category` segments are stripped ("Kitchen / Kettles" becomes
  "Kitchen/Kettles");
- `stock` is optional: it sets inventory, it is not content, so it is not part of the hash.

Whatever the text says, it is data: `{"$gt": ""}` in a name is a name, stored literally.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from hashlib import sha256
from pathlib import Path
from typing import Any, TypedDict, cast

from pydantic import BaseModel

from domain.money import excess_decimals
from domain.tenancy import TenantId

REQUIRED_COLUMNS = ("sku", "name", "price", "currency")
COLUMNS = (*REQUIRED_COLUMNS, "description", "category", "attributes", "tags", "stock")
TEXT_COLUMNS = ("sku", "name", "description", "category", "price", "currency", "stock")
CONTENT_FIELDS = (
    "sku",
    "name",
    "description",
    "category",
    "price",
    "currency",
    "attributes",
    "tags",
)
"""What the content hash covers: not the tenant, which is the key, nor stock, which is inventory."""
ROW = "row"
"""The field a reject names when the row itself could not be parsed."""
ATTRIBUTE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9 _-]{0,63}")
EXCERPT_LENGTH = 500


class CatalogFileError(Exception):
    """A catalog file that cannot be read at all: missing, not its format, or no usable header."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot read catalog file {path}: {reason}")
        self.path = str(path)
        self.reason = reason


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces, UTF-8 kept): what sizes and hashes use."""
    return _CANONICAL.encode(value)


def normalized_price(price: Decimal) -> Decimal:
    """12.50 and 12.5 are one price: the shortest spelling, never an exponent (1E+2)."""
    price = price.normalize()
    return price.quantize(Decimal(1)) if price.as_tuple().exponent > 0 else price


def hash_content(product: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the content fields, the price as its normalized string:
    equal content, equal hash, whatever the file format."""
    content = {name: product[name] for name in CONTENT_FIELDS}
    return sha256(canonical_json(content).encode()).hexdigest()


class ProductRecord(TypedDict):
    """A catalog product of one tenant, keyed by (tenant, sku), as the stores get it: JSON-ready,
    the price as a decimal string so that no store rounds it."""

    tenant: str
    sku: str
    name: str
    description: str | None
    category: str | None
    price: str
    currency: str
    attributes: dict[str, Any]
    tags: list[str]
    stock: int | None
    content_hash: str


def product_record(tenant: str, row: dict[str, Any]) -> ProductRecord:
    """Turn a canonical row that passed every check into its record, in place.

    Neither a `Product` nor a copy: per row, the model's validation and dump would cost more than
    the whole GX suite, and a copy would add a third to a chunk's memory.
    """
    del row["attributes_size"]
    row["tenant"] = tenant
    row["price"] = str(normalized_price(Decimal(row["price"])))
    row["stock"] = None if row["stock"] is None else int(row["stock"])
    row["content_hash"] = hash_content(row)
    return cast(ProductRecord, row)


class Reject(BaseModel):
    """A source row that did not become a product, and why, for the quarantine."""

    tenant: TenantId
    source: str
    line: int
    """CSV/JSONL: the physical 1-based line (the header is line 1); Parquet: the 1-based row."""
    fields: list[str]
    reason: str
    raw: str


@dataclass(frozen=True)
class CatalogChunk:
    """What one chunk of a catalog file gave: every row read is in `products` or `rejects`."""

    source: str
    rows_read: int
    products: list[ProductRecord]
    rejects: list[Reject]


def excerpt(text: str) -> str:
    """The start of a raw row, enough to recognise it in the quarantine."""
    text = text.rstrip("\r\n")
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def canonical_row(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A row's values in canonical form (see the module docstring), and type errors by field.

    A value of the wrong type becomes missing, so GX still sees every row; its reason here wins
    over GX's "missing" for the same field.
    """
    row: dict[str, Any] = {}
    issues: dict[str, str] = {}
    for column in TEXT_COLUMNS:
        row[column], kind = _text(values.get(column))
        if kind:
            issues[column] = f"{column} must be text or a number, not {kind}"
    if row["currency"]:
        row["currency"] = row["currency"].upper()
    problem = excess_decimals(row["price"], row["currency"])
    if problem:
        issues["price"] = f"price {problem}"
    if row["category"]:
        row["category"] = "/".join(part.strip() for part in row["category"].split("/"))
    row["tags"], problem = _tags(values.get("tags"))
    if problem:
        issues["tags"] = problem
    row["attributes"], problem = _attributes(values.get("attributes"))
    if problem:
        issues["attributes"] = problem
    row["attributes_size"] = len(canonical_json(row["attributes"]).encode())
    return row, issues


_DIGITS = 30
"""Numbers further from 1 than 10**30 keep their exponent: spelling them out costs memory (JSON
allows 1e999999999) and they fail every check anyway."""


def _text(value: Any) -> tuple[str | None, str | None]:
    """(text, None), or (None, the kind of value) when it has no text form."""
    if value is None:
        return None, None
    if isinstance(value, str):
        if "\r" in value:
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        return value.strip() or None, None
    if isinstance(value, bool):
        return None, _kind(value)
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float | Decimal):
        if math.isnan(value):
            return None, None
        if math.isinf(value) or abs(Decimal(value).adjusted()) > _DIGITS:
            return str(value), None
        if value == int(value):
            return str(int(value)), None
        return (repr(value) if isinstance(value, float) else format(value, "f")), None
    return None, _kind(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _tags(value: Any) -> tuple[list[str], str | None]:
    if value is None:
        return [], None
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        return [], f"tags must be '|'-separated text or a list of text, not {_kind(value)}"
    tags = (tag.strip() for item in items for tag in item.split("|"))
    return list(dict.fromkeys(tag for tag in tags if tag)), None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=float)
_EXACT_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=Decimal)


def parse_json(text: str, exact: bool = False) -> tuple[Any, str | None]:
    """(value, None), or (None, why not). Decimals are `Decimal` if `exact`, floats otherwise.

    Strict JSON: NaN and Infinity are refused, because no store round-trips them.
    """
    try:
        return (_EXACT_DECODER if exact else _DECODER).decode(text), None
    except json.JSONDecodeError as error:
        return None, f"{error.msg.removesuffix(' at')} at character {error.pos + 1}"
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as error:
        return None, str(error)


def _attributes(value: Any) -> tuple[dict[str, Any], str | None]:
    if isinstance(value, str):
        if not value.strip():
            return {}, None
        value, problem = parse_json(value)
        if problem:
            return {}, f"attributes are not valid JSON: {problem}"
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return {}, f"attributes must be a JSON object, not {_kind(value)}"
    attributes: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not ATTRIBUTE_KEY.fullmatch(key):
            return {}, (
                f"attribute key {key!r} must be 1-64 letters, digits, spaces, '_' or '-', "
                "not starting with a space or '-'"
            )
        attributes[key] = _attribute_value(item)
        if attributes[key] is _INVALID:
            return {}, (
                f"attribute {key!r} must be text, a number (64-bit integer or finite), true/false, "
                "null or a list of those"
            )
    return attributes, None


_INVALID = object()


def _attribute_value(value: Any) -> Any:
    """The value as stored (decimals from JSONL as floats, like CSV's), or `_INVALID`."""
    if isinstance(value, list | tuple):
        items = [_scalar(item) for item in value]
        return _INVALID if any(item is _INVALID for item in items) else items
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else _INVALID
    if isinstance(value, float | Decimal) and math.isfinite(float(value)):
        return float(value)
    return _INVALID
