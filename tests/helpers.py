"""Test helpers that are not fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from domain.catalog import canonical_row, product_record

CATALOG_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "catalog"


def run_cli(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real `polyflow` command in a fresh process; a hang fails the test via the timeout."""
    return subprocess.run(
        [sys.executable, "-m", "polyflow", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        timeout=timeout,
        check=False,
    )


def write_parquet(path: Path) -> Path:
    """The JSONL fixture's products in typed columns: decimal price, int stock, list of tags."""
    rows = [
        {key.lower(): value for key, value in json.loads(line).items()}
        for line in (CATALOG_FIXTURES / "products.jsonl").read_text().splitlines()
        if line.strip()
    ]
    tags = [row.get("tags") for row in rows]
    table = pa.table(
        {
            "SKU": [row["sku"] for row in rows],
            "name": [row["name"] for row in rows],
            "description": [row.get("description") for row in rows],
            "category": [row["category"] for row in rows],
            "price": pa.array([Decimal(str(row["price"])) for row in rows], pa.decimal128(14, 4)),
            "currency": [row["currency"] for row in rows],
            "attributes": [
                row["attributes"]
                if isinstance(row.get("attributes"), str)
                else json.dumps(row.get("attributes"))
                for row in rows
            ],
            "tags": [tag.split("|") if isinstance(tag, str) else tag for tag in tags],
            "stock": pa.array([row.get("stock") for row in rows], pa.int64()),
        }
    )
    pq.write_table(table, path, row_group_size=3)
    return path


def catalog_product(sku: str, price: str, currency: str = "EUR") -> dict[str, Any]:
    """A minimal catalog product as ingestion hands it to MongoDB: the canonical values of a
    file row and its `hash_content` hash. The store call names the tenant, not the product.

    The import's checks are not applied, so a test can also make a product that an import
    would refuse (a price with more decimals than its currency has, as older data may hold).
    """
    row, _ = canonical_row(
        {"sku": sku, "name": f"Product {sku}", "price": price, "currency": currency}
    )
    product: dict[str, Any] = dict(product_record("", row))
    del product["tenant"]
    return product
