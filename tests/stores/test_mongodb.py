from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError

from stores import mongodb


def product(sku: str, name: str = "Kettle", content_hash: str = "h1") -> dict[str, object]:
    return {"sku": sku, "name": name, "price": "19.99", "content_hash": content_hash}


def test_upsert_counts_inserted_updated_and_unchanged(tenant: str) -> None:
    first = mongodb.upsert_products(tenant, [product("SKU-1"), product("SKU-2")])
    second = mongodb.upsert_products(
        tenant, [product("SKU-1"), product("SKU-2", "Teapot", "h2"), product("SKU-3")]
    )

    assert first == mongodb.UpsertCounts(inserted=2, updated=0, unchanged=0)
    assert second == mongodb.UpsertCounts(inserted=1, updated=1, unchanged=1)
    stored = mongodb.find_products(tenant, ["SKU-1", "SKU-2", "SKU-3"])
    assert {sku: (p["name"], p["version"]) for sku, p in stored.items()} == {
        "SKU-1": ("Kettle", 1),
        "SKU-2": ("Teapot", 2),
        "SKU-3": ("Kettle", 1),
    }


def test_unchanged_product_is_not_rewritten(tenant: str) -> None:
    mongodb.upsert_products(tenant, [product("SKU-1")])
    before = mongodb.database()[mongodb.PRODUCTS].find_one({"tenant": tenant, "sku": "SKU-1"})
    mongodb.upsert_products(tenant, [product("SKU-1")])
    after = mongodb.database()[mongodb.PRODUCTS].find_one({"tenant": tenant, "sku": "SKU-1"})

    assert after == before


def test_sku_is_unique_per_tenant(tenant: str) -> None:
    mongodb.upsert_products(tenant, [product("SKU-1")])
    with pytest.raises(DuplicateKeyError):
        mongodb.database()[mongodb.PRODUCTS].insert_one({"tenant": tenant, "sku": "SKU-1"})


def test_query_operators_in_values_are_stored_literally(tenant: str) -> None:
    sneaky = product('{"$gt": ""}', name='{"$where": "sleep(1000)"}')
    mongodb.upsert_products(tenant, [sneaky])

    stored = mongodb.find_products(tenant, ['{"$gt": ""}'])
    assert stored['{"$gt": ""}']["name"] == '{"$where": "sleep(1000)"}'
    assert mongodb.find_products(tenant, ["SKU-404"]) == {}
