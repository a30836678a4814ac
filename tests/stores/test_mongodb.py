from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

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


def test_product_pages_follow_sku_order_and_the_updated_since_filter(tenant: str) -> None:
    mongodb.upsert_products(tenant, [product(f"SKU-{i}") for i in (3, 1, 4, 2, 5)])
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    mongodb.upsert_products(tenant, [product(f"SKU-{i}", content_hash="h2") for i in (5, 1, 3)])

    first = mongodb.product_page(tenant, None, 2)
    rest = mongodb.product_page(tenant, first[-1]["sku"], 10)
    changed = mongodb.product_page(tenant, None, 10, updated_since=between)

    assert [p["sku"] for p in first] == ["SKU-1", "SKU-2"]
    assert [p["sku"] for p in rest] == ["SKU-3", "SKU-4", "SKU-5"]
    assert [p["sku"] for p in changed] == ["SKU-1", "SKU-3", "SKU-5"]
    assert "_id" not in first[0]


def test_content_hashes_streams_every_product_of_the_tenant_only(tenant: str) -> None:
    mongodb.upsert_products(tenant, [product(f"SKU-{i}", content_hash=f"h{i}") for i in range(7)])
    mongodb.upsert_products(f"{tenant}-other", [product("SKU-X")])

    pairs = sorted(mongodb.content_hashes(tenant, batch_size=3))

    assert pairs == [(f"SKU-{i}", f"h{i}") for i in range(7)]


def test_search_watermark_starts_empty_and_only_moves_forward(tenant: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    assert mongodb.search_watermark(tenant) is None
    mongodb.advance_search_watermark(tenant, now)
    mongodb.advance_search_watermark(tenant, now - timedelta(minutes=5))
    assert mongodb.search_watermark(tenant) == now
    mongodb.advance_search_watermark(tenant, now + timedelta(minutes=5))
    assert mongodb.search_watermark(tenant) == now + timedelta(minutes=5)


def test_upsert_reports_versions_and_keeps_inventory_out_of_the_catalog(tenant: str) -> None:
    mongodb.upsert_products(tenant, [{**product("SKU-1"), "stock": 4}, product("SKU-2")])
    before = mongodb.find_products(tenant, ["SKU-1"])["SKU-1"]
    counts = mongodb.upsert_products(
        tenant, [product("SKU-1", name="Kettle 2", content_hash="h2"), product("SKU-2")]
    )

    after = mongodb.find_products(tenant, ["SKU-1", "SKU-2"])
    assert counts.versions == {"SKU-1": 2, "SKU-2": 1}
    assert "stock" not in before
    assert after["SKU-1"]["updated_at"] > before["updated_at"]


def test_quarantine_is_keyed_by_source_line(tenant: str) -> None:
    reject = {"tenant": tenant, "source": "a.csv", "line": 7, "fields": ["price"], "reason": "x"}
    mongodb.quarantine([reject, {**reject, "line": 3}])
    mongodb.quarantine([{**reject, "reason": "price must be positive"}])

    stored = mongodb.rejects_of(tenant, "a.csv")
    assert [(r["line"], r["reason"]) for r in stored] == [(3, "x"), (7, "price must be positive")]


def test_customer_profiles_keep_the_newest_version(tenant: str) -> None:
    def profile(version: int, name: str) -> dict[str, object]:
        return {"customer_id": "c-1", "email": "c@x.io", "name": name, "version": version}

    mongodb.upsert_customers(tenant, [profile(2, "two"), profile(1, "one")])
    mongodb.upsert_customers(tenant, [profile(1, "one again")])
    assert mongodb.find_customer(tenant, "c-1")["name"] == "two"

    mongodb.upsert_customers(tenant, [profile(3, "three"), profile(2, "two again")])
    assert mongodb.find_customer(tenant, "c-1") == {**profile(3, "three"), "tenant": tenant}
    assert mongodb.database()[mongodb.CUSTOMERS].count_documents({"tenant": tenant}) == 1
