"""`reindex-search` against the real MongoDB and Elasticsearch of the local stack."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from hashlib import sha256
from time import monotonic
from typing import Any

import pytest
from prefect.artifacts import Artifact

from expectations.search import content_digest
from flows.artifacts import artifact_key
from flows.reindex_search import (
    SearchGateFailed,
    build_search_index,
    publish_search_index,
    reindex_search,
)
from stores import elasticsearch, mongodb
from tests.helpers import run_cli


def product(
    sku: str,
    name: str,
    category: str = "kitchen/kettles",
    price: str = "20",
    tags: tuple[str, ...] = (),
    description: str = "",
) -> dict[str, Any]:
    """A catalog product as ingestion hands it to MongoDB: price as decimal text, a content hash.

    `upsert_products` stamps `updated_at` and the version itself."""
    content = {
        "sku": sku,
        "name": name,
        "description": description or f"{name}, a fine product",
        "category": category,
        "price": price,
        "currency": "EUR",
        "tags": list(tags),
    }
    return {**content, "content_hash": sha256(repr(sorted(content.items())).encode()).hexdigest()}


CATALOG = (
    ("KET-1", "Red kettle", "kitchen/kettles", "19.99", ("red",)),
    ("KET-2", "Steel kettle", "kitchen/kettles", "49.50", ("steel",)),
    ("KET-3", "Travel kettle", "kitchen/kettles", "12", ("travel", "red")),
    ("TEA-1", "Kettle-shaped teapot", "kitchen/teapots", "30", ()),
    ("TEA-2", "Glass teapot", "kitchen/teapots", "25", ()),
    ("RAK-1", "Leaf rake", "garden/tools", "15", ()),
)


@pytest.fixture(autouse=True)
def forget_tenant(tenant: str) -> Iterator[None]:
    """Remove the test tenant's products, watermark and indices afterwards: reindex pages scan
    the tenant's products on FerretDB, and leftovers would only grow the shared collection."""
    yield
    database = mongodb.database()
    database[mongodb.PRODUCTS].delete_many({"tenant": tenant})
    database[mongodb.SEARCH_WATERMARKS].delete_one({"_id": tenant})
    for index in elasticsearch.versioned_indices(tenant):
        elasticsearch.delete_index(index)


def seed(tenant: str) -> list[dict[str, Any]]:
    products = [product(*row) for row in CATALOG]
    mongodb.upsert_products(tenant, products)
    return products


def alias_holders(tenant: str) -> dict[str, set[str]]:
    """Which indices each of the tenant's two aliases is on."""
    return {
        alias: {
            index
            for index, found in elasticsearch.versioned_indices(tenant).items()
            if alias in found
        }
        for alias in (elasticsearch.read_alias(tenant), elasticsearch.write_alias(tenant))
    }


def test_full_reindex_builds_a_gated_index_behind_both_aliases(tenant: str) -> None:
    products = seed(tenant)

    summary = reindex_search(tenant=tenant)

    assert (summary.mode, summary.indexed, summary.old_indices) == ("full", len(products), [])
    assert alias_holders(tenant) == {
        elasticsearch.read_alias(tenant): {summary.index},
        elasticsearch.write_alias(tenant): {summary.index},
    }
    assert content_digest(elasticsearch.content_hashes(summary.index)) == content_digest(
        mongodb.content_hashes(tenant)
    )
    stored = mongodb.find_products(tenant, ["KET-1"])["KET-1"]
    document = elasticsearch.client().get(index=summary.index, id="KET-1")["_source"]
    assert document == elasticsearch.product_document(tenant, stored)
    assert document["price"] == 19.99
    assert mongodb.search_watermark(tenant) is not None
    assert {"build", "gate", "swap_and_catch_up", "prune", "total"} <= set(summary.timings)


def test_search_ranks_filters_and_counts_categories(tenant: str) -> None:
    seed(tenant)
    reindex_search(tenant=tenant)

    kettles = elasticsearch.search(tenant, "kettle")
    assert {hit.sku for hit in kettles.hits} == {"KET-1", "KET-2", "KET-3", "TEA-1"}
    assert kettles.total == 4
    assert kettles.facets == {"kitchen/kettles": 3, "kitchen/teapots": 1}
    assert kettles.hits[0].score >= kettles.hits[-1].score
    red = kettles.hits[[hit.sku for hit in kettles.hits].index("KET-1")]
    assert (red.name, red.price, red.currency, red.category) == (
        "Red kettle",
        19.99,
        "EUR",
        "kitchen/kettles",
    )

    teapots = elasticsearch.search(tenant, "kettle", category="kitchen/teapots")
    assert [hit.sku for hit in teapots.hits] == ["TEA-1"]
    assert teapots.total == 1
    assert teapots.facets == kettles.facets, "facets ignore the category filter"

    kitchen = elasticsearch.search(tenant, "", category="kitchen")
    assert kitchen.total == 5, "a parent category finds its children's products"

    cheap = elasticsearch.search(tenant, "kettle", min_price=12, max_price=20)
    assert {hit.sku for hit in cheap.hits} == {"KET-1", "KET-3"}
    assert cheap.facets == {"kitchen/kettles": 2}

    assert elasticsearch.search(tenant, "kettle", min_price=100).total == 0


@pytest.mark.parametrize("text", ["name:* OR _id:*", '{"match_all":{}}'])
def test_query_syntax_in_search_text_is_matched_literally(tenant: str, text: str) -> None:
    seed(tenant)
    mongodb.upsert_products(tenant, [product("ODD-1", text, description="odd")])
    reindex_search(tenant=tenant)

    result = elasticsearch.search(tenant, text)

    assert [hit.sku for hit in result.hits] == ["ODD-1"]
    assert result.total == 1


def test_searches_during_a_reindex_never_fail_nor_see_a_partial_index(tenant: str) -> None:
    count = 200  # in pages of 20, so each build spans many tasks while the searches run
    mongodb.upsert_products(
        tenant,
        [
            product(f"W-{i:05d}", f"Widget number {i}", f"shop/c{i % 7}", f"{1 + i % 90}")
            for i in range(count)
        ],
    )
    first = reindex_search(tenant=tenant, batch_size=20).index
    totals: list[int] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def search_until_done() -> None:
        deadline = monotonic() + 60
        while not done.is_set() and monotonic() < deadline:
            try:
                totals.append(elasticsearch.search(tenant, "widget", size=1).total)
            except Exception as error:
                failures.append(error)

    searcher = threading.Thread(target=search_until_done)
    searcher.start()
    try:
        summaries = [reindex_search(tenant=tenant, batch_size=20) for _ in range(2)]
    finally:
        done.set()
        searcher.join()

    assert failures == []
    assert len(totals) > 10
    assert set(totals) == {count}
    assert [summary.indexed for summary in summaries] == [count, count]
    newest = summaries[-1].index
    assert alias_holders(tenant) == {
        elasticsearch.read_alias(tenant): {newest},
        elasticsearch.write_alias(tenant): {newest},
    }
    assert list(elasticsearch.versioned_indices(tenant)) == [summaries[0].index, newest]
    assert summaries[-1].pruned == [first]


@pytest.mark.parametrize(
    ("change", "reason", "in_mongodb"),
    [
        (product("KET-1", "Red kettle, now blue"), "pairs differ from MongoDB", 6),
        (product("NEW-1", "A product added after the build"), "as many products as MongoDB", 7),
    ],
)
def test_a_failed_gate_deletes_the_new_index_and_leaves_the_aliases(
    tenant: str, change: dict[str, Any], reason: str, in_mongodb: int
) -> None:
    seed(tenant)
    live = reindex_search(tenant=tenant).index
    built = build_search_index(tenant)
    mongodb.upsert_products(tenant, [change])

    with pytest.raises(SearchGateFailed, match=reason):
        publish_search_index(tenant, built.index, built.started_at)

    assert alias_holders(tenant) == {
        elasticsearch.read_alias(tenant): {live},
        elasticsearch.write_alias(tenant): {live},
    }
    assert list(elasticsearch.versioned_indices(tenant)) == [live]
    assert elasticsearch.search(tenant, "kettle").total == 4
    artifact = Artifact.get(artifact_key("search-gate", tenant))
    assert artifact is not None
    assert reason in artifact.data
    assert f"| MongoDB | {in_mongodb} |" in artifact.data
    assert f"| `{built.index}` | 6 |" in artifact.data


def test_incremental_indexes_only_changed_products_and_advances_the_watermark(
    tenant: str,
) -> None:
    seed(tenant)
    full = reindex_search(tenant=tenant)
    after_full = mongodb.search_watermark(tenant)
    mongodb.upsert_products(
        tenant,
        [product("KET-2", "Steel kettle XL", price="59"), product("NEW-1", "Copper kettle")],
    )

    incremental = reindex_search(tenant=tenant, mode="incremental")

    assert (incremental.mode, incremental.index, incremental.indexed) == (
        "incremental",
        full.index,
        2,
    )
    watermark = mongodb.search_watermark(tenant)
    assert after_full is not None and watermark is not None
    assert after_full < watermark
    assert abs(watermark - incremental.watermark) < timedelta(milliseconds=1)
    versions = {
        sku: elasticsearch.client().get(index=full.index, id=sku)["_version"]
        for sku in ("KET-1", "KET-2", "NEW-1")
    }
    assert versions == {"KET-1": 1, "KET-2": 2, "NEW-1": 1}
    assert {hit.sku for hit in elasticsearch.search(tenant, "kettle").hits} >= {"NEW-1"}
    assert elasticsearch.search(tenant, "xl").hits[0].price == 59

    again = reindex_search(tenant=tenant, mode="incremental")
    assert (again.mode, again.indexed) == ("incremental", 0)


def test_incremental_without_an_index_runs_a_full_rebuild(tenant: str) -> None:
    seed(tenant)

    summary = reindex_search(tenant=tenant, mode="incremental")

    assert (summary.requested_mode, summary.mode, summary.indexed) == (
        "incremental",
        "full",
        len(CATALOG),
    )
    assert elasticsearch.current_index(tenant) == summary.index


def test_search_command_prints_ranked_products_and_facets(tenant: str) -> None:
    seed(tenant)
    reindex_search(tenant=tenant)

    result = run_cli("search", "kettle", "--tenant", tenant, "--max-price", "40")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 products matching 'kettle'" in result.stdout
    assert "KET-1" in result.stdout and "19.99 EUR" in result.stdout
    assert "KET-2" not in result.stdout
    assert "kitchen/teapots" in result.stdout


def test_search_command_names_a_tenant_without_an_index(tenant: str) -> None:
    result = run_cli("search", "kettle", "--tenant", tenant)

    assert result.returncode == 1
    assert f"tenant {tenant} has no search index yet" in result.stdout
