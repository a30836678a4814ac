from __future__ import annotations

from pathlib import Path

from domain.catalog import hash_content
from expectations.catalog_files import read_catalog
from flows.smoke import smoke
from stores import elasticsearch, mongodb
from tasks.smoke import SKU


def test_smoke_round_trips_every_store_and_can_run_again(tenant: str) -> None:
    expected = [
        f"{store}: ok"
        for store in ("postgres", "mongodb", "redis", "cassandra", "elasticsearch", "neo4j")
    ]

    assert smoke(tenant=tenant) == expected
    assert smoke(tenant=tenant) == expected


def test_the_smoke_product_is_stored_as_an_imported_one_would_be(
    tenant: str, tmp_path: Path
) -> None:
    """Same content, same canonical values and the same `hash_content` hash as a file import."""
    catalog = tmp_path / "smoke.csv"
    catalog.write_text(
        "sku,name,description,category,price,currency\n"
        f"{SKU},Smoke test kettle,written by the smoke flow,kitchen/kettles,19.99,EUR\n"
    )
    (imported,) = [product for chunk in read_catalog(catalog, tenant) for product in chunk.products]

    smoke(tenant=tenant)

    stored = mongodb.find_products(tenant, [SKU])[SKU]
    assert stored["content_hash"] == imported["content_hash"] == hash_content(stored)
    assert {field: stored[field] for field in imported if field != "stock"} == {
        field: value for field, value in imported.items() if field != "stock"
    }
    document = elasticsearch.client().get(index=elasticsearch.read_alias(tenant), id=SKU)
    assert document["_source"] == elasticsearch.product_document(tenant, {**imported, "version": 1})
