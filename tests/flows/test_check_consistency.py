"""`check-consistency` against the real stores: a consistent tenant, drifted on purpose directly
in one derived store at a time; the check finds exactly those records, and a repair fixes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prefect import flow

from domain.consistency import PairResult
from domain.orders import OrderRequest
from domain.outbox import ORDER_EVENTS
from flows.check_consistency import ConsistencyDrift, ConsistencyReport, check_consistency
from flows.ingest_catalog import ingest_catalog
from flows.place_order import place_order
from flows.reindex_search import reindex_search
from stores import cassandra, clients, elasticsearch, mongodb, neo4j, postgres, redis
from tasks.consistency import PAIRS
from tasks.outbox import deliver_now
from tests.helpers import CATALOG_FIXTURES, catalog_product


@dataclass(frozen=True)
class Shop:
    tenant: str
    first_order: str
    second_order: str


def request(tenant: str, key: str, customer: str, quantities: dict[str, int]) -> OrderRequest:
    return OrderRequest.model_validate(
        {
            "tenant": tenant,
            "customer": {"customer_id": customer, "email": f"{customer}@example.com", "name": key},
            "lines": [{"sku": sku, "quantity": qty} for sku, qty in quantities.items()],
            "currency": "EUR",
            "idempotency_key": key,
            "payment_reference": f"pay-{key}",
        }
    )


@flow(name="deliver-test-events")
def deliver_events(event_ids: list[int]) -> list[str]:
    return deliver_now(event_ids)


def deliver_pending(tenant: str) -> None:
    """Deliver what the tenant still has pending (the import's stock events) to every store."""
    pending = {
        int(rid.removeprefix("outbox-"))
        for store in ("redis", "cassandra", "neo4j", "mongodb")
        for rid in postgres.checksums.pending_aggregates(tenant, store)
        if rid.startswith("outbox-")
    }
    if pending:
        assert deliver_events(sorted(pending)) == []


def forget(tenant: str) -> None:
    database = mongodb.database()
    database[mongodb.PRODUCTS].delete_many({"tenant": tenant})
    database[mongodb.CUSTOMERS].delete_many({"tenant": tenant})
    database[mongodb.SEARCH_WATERMARKS].delete_one({"_id": tenant})
    for index in elasticsearch.versioned_indices(tenant):
        elasticsearch.delete_index(index)


@pytest.fixture(scope="module")
def shop(stores: None) -> Iterator[Shop]:
    """A consistent tenant: a small catalog imported and indexed, two orders placed."""
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    ingest_catalog(path=str(CATALOG_FIXTURES / "products.csv"), tenant=tenant)
    reindex_search(tenant=tenant)
    first = place_order(request(tenant, "order-1", "c-1", {"KET-001": 1}))
    second = place_order(request(tenant, "order-2", "c-2", {"KET-001": 2, "TOR-7": 1}))
    deliver_pending(tenant)
    yield Shop(tenant, first.order_id, second.order_id)
    forget(tenant)


def by_pair(report: ConsistencyReport) -> dict[str, PairResult]:
    return {result.pair: result for _, result in report.results}


def drift_of(report: ConsistencyReport) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """pair -> (missing, extra, stale), only for pairs that drifted."""
    return {
        name: (r.drift.missing, r.drift.extra, r.drift.stale)
        for name, r in by_pair(report).items()
        if r.drift.total
    }


def failed_check(tenant: str, **options: Any) -> ConsistencyReport:
    with pytest.raises(ConsistencyDrift) as failure:
        check_consistency(tenant=tenant, **options)
    return failure.value.report


def test_a_consistent_tenant_passes_every_pair(shop: Shop) -> None:
    report = check_consistency(tenant=shop.tenant)

    assert report.passed
    results = by_pair(report)
    assert list(results) == list(PAIRS)
    assert all(r.checked and r.drift.total == 0 for r in results.values())
    assert results["orders-redis"].records == 2
    assert results["orders-neo4j"].records == 3
    assert results["users-mongodb"].records == 2
    assert results["catalog-elasticsearch"].records == results["catalog-neo4j"].records > 0


def _first_order_event(shop: Shop) -> Any:
    (event,) = postgres.checksums.latest_events(shop.tenant, [shop.first_order], ORDER_EVENTS)
    return event


def delete_order_status(shop: Shop) -> tuple[str, list[str], list[str], list[str]]:
    redis.client().delete(redis.key(shop.tenant, "order", shop.first_order))
    return "orders-redis", [shop.first_order], [], []


def change_neo4j_quantity(shop: Shop) -> tuple[str, list[str], list[str], list[str]]:
    neo4j.driver().execute_query(
        "MATCH (:Customer {tenant: $tenant})-[r:PURCHASED {order_id: $order}]->"
        "(:Product {sku: 'TOR-7'}) SET r.quantity = 99",
        tenant=shop.tenant,
        order=shop.second_order,
    )
    return "orders-neo4j", [], [], [f"{shop.second_order}:TOR-7"]


def drop_search_document(shop: Shop) -> tuple[str, list[str], list[str], list[str]]:
    index = elasticsearch.active_index(shop.tenant)
    elasticsearch.client().delete(index=index, id="KNIFE-8", refresh=True)
    return "catalog-elasticsearch", ["KNIFE-8"], [], []


def add_search_document(shop: Shop) -> tuple[str, list[str], list[str], list[str]]:
    index = elasticsearch.active_index(shop.tenant)
    document = {"tenant": shop.tenant, "sku": "GHOST-1", "name": "Ghost", "content_hash": "0"}
    elasticsearch.client().index(index=index, id="GHOST-1", document=document, refresh=True)
    return "catalog-elasticsearch", [], ["GHOST-1"], []


def stale_stock(shop: Shop) -> tuple[str, list[str], list[str], list[str]]:
    redis.client().hset(redis.key(shop.tenant, "stock", "KET-001"), "on_hand", "999")
    return "inventory-redis", [], [], ["KET-001"]


def remove_cassandra_event(shop: Shop) -> tuple[str, list[str], list[str], list[str]]:
    event = _first_order_event(shop)
    cassandra.delete_event(shop.tenant, event.created_at, f"outbox-{event.event_id}")
    return "orders-cassandra", [f"outbox-{event.event_id}"], [], []


def change_mongo_profile(shop: Shop) -> tuple[str, list[str], list[str], list[str]]:
    mongodb.database()[mongodb.CUSTOMERS].update_one(
        {"tenant": shop.tenant, "customer_id": "c-2"}, {"$set": {"name": "Mallory"}}
    )
    return "users-mongodb", [], [], ["c-2"]


DRIFTS: list[Callable[[Shop], tuple[str, list[str], list[str], list[str]]]] = [
    delete_order_status,
    change_neo4j_quantity,
    drop_search_document,
    add_search_document,
    stale_stock,
    remove_cassandra_event,
    change_mongo_profile,
]


@pytest.mark.parametrize("drift", DRIFTS, ids=[d.__name__ for d in DRIFTS])
def test_finds_exactly_the_drifted_records_and_repairs_them(
    shop: Shop, drift: Callable[[Shop], tuple[str, list[str], list[str], list[str]]]
) -> None:
    pair, missing, extra, stale = drift(shop)

    report = failed_check(shop.tenant)

    assert drift_of(report) == {pair: (missing, extra, stale)}
    assert set(report.failures) == {f"{shop.tenant}/{pair}"}
    assert len(by_pair(report)[pair].buckets_differing) == 1

    repaired = check_consistency(tenant=shop.tenant, repair=True)

    result = by_pair(repaired)[pair]
    assert (result.drift.missing, result.drift.extra, result.drift.stale) == (
        missing,
        extra,
        stale,
    )
    assert result.repaired >= 1
    assert result.remaining is not None and result.remaining.total == 0
    assert check_consistency(tenant=shop.tenant).passed


def test_pending_outbox_events_are_not_drift(shop: Shop) -> None:
    placed = place_order(request(shop.tenant, "order-late", "c-3", {"KET-001": 1}), sync=False)

    report = check_consistency(tenant=shop.tenant)

    assert report.passed
    results = by_pair(report)
    if postgres.checksums.pending_aggregates(shop.tenant, "redis"):  # no catch-up sync yet
        assert results["orders-redis"].drift.in_flight == 1
        assert results["users-mongodb"].drift.in_flight == 1
    assert placed.order_id
    deliver_pending(shop.tenant)
    assert check_consistency(tenant=shop.tenant).passed


def test_drift_in_one_tenant_is_invisible_to_another(shop: Shop, tenant: str) -> None:
    postgres.ensure_tenant(tenant)
    mongodb.upsert_products(tenant, [catalog_product("KET-001", "39.90")])
    postgres.set_inventory(tenant, {"KET-001": 5}, {"stock_changed": ("redis",)})
    deliver_pending(tenant)
    other = place_order(request(tenant, "order-1", "c-1", {"KET-001": 1}))
    redis.client().delete(redis.key(tenant, "order", other.order_id))
    try:
        assert check_consistency(tenant=shop.tenant).passed

        report = failed_check(tenant, pairs=["orders-redis", "users-redis"])
        assert drift_of(report) == {"orders-redis": ([other.order_id], [], [])}

        check_consistency(tenant=tenant, pairs=["orders-redis"], repair=True)
        assert redis.get_versioned(tenant, "order", other.order_id)["status"] == "placed"
        assert check_consistency(tenant=shop.tenant).passed
    finally:
        forget(tenant)


def test_a_down_store_fails_its_pairs_naming_it_and_the_others_are_checked(shop: Shop) -> None:
    with clients.pointed_at(redis_url="redis://127.0.0.1:1/0"):
        report = failed_check(shop.tenant)

    results = by_pair(report)
    down = {name for name, r in results.items() if not r.checked}
    assert down == {name for name, pair in PAIRS.items() if "redis" in pair.stores}
    for name in down:
        assert "redis (127.0.0.1:1) is unreachable" in (results[name].error or "")
        assert report.failures[f"{shop.tenant}/{name}"] == ["a store of the pair could not be read"]
    assert all(results[name].drift.total == 0 for name in set(results) - down)
    assert redis.client().ping()
