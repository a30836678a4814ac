"""One write and one read per store, as retryable tasks: proof that the whole chain works."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from prefect import task

from domain.catalog import ProductRecord, canonical_row, product_record
from stores import cassandra, elasticsearch, mongodb, neo4j, postgres, redis
from tasks.outbox import ROUTES
from tasks.retry import STORE_TASK

SKU = "SMOKE-0001"
VERSION = 1
"""The smoke product never changes, so it has one catalog version wherever it is written."""


class SmokeMismatch(RuntimeError):
    """A store gave back something other than what was just written to it."""


def _expect(store: str, wrote: object, read: object) -> str:
    if wrote != read:
        raise SmokeMismatch(f"{store}: wrote {wrote!r} but read back {read!r}")
    return f"{store}: ok"


def _product(tenant: str) -> ProductRecord:
    """The smoke product as catalog ingestion would make it from a file row: canonical values
    and `hash_content`'s hash, so it hashes like an imported product with the same content."""
    row, problems = canonical_row(
        {
            "sku": SKU,
            "name": "Smoke test kettle",
            "description": "written by the smoke flow",
            "category": "kitchen/kettles",
            "price": "19.99",
            "currency": "EUR",
        }
    )
    if problems:
        raise SmokeMismatch(f"the smoke product is not a valid catalog row: {problems}")
    return product_record(tenant, row)


@task(name="smoke-postgres", **STORE_TASK)
def smoke_postgres(tenant: str) -> str:
    postgres.upsert_tenants({tenant: "Smoke test tenant"})
    postgres.set_inventory(tenant, {SKU: 7}, ROUTES)
    return _expect("postgres", {SKU: 7}, postgres.get_inventory(tenant, [SKU]))


@task(name="smoke-mongodb", **STORE_TASK)
def smoke_mongodb(tenant: str) -> str:
    product = _product(tenant)
    mongodb.upsert_products(tenant, [product])
    stored = mongodb.find_products(tenant, [SKU]).get(SKU, {})
    return _expect("mongodb", product["content_hash"], stored.get("content_hash"))


@task(name="smoke-redis", **STORE_TASK)
def smoke_redis(tenant: str) -> str:
    product: dict[str, Any] = dict(_product(tenant))
    redis.cache_products(tenant, {SKU: product}, ttl=300)
    return _expect("redis", product, redis.cached_products(tenant, [SKU]).get(SKU))


@task(name="smoke-cassandra", **STORE_TASK)
def smoke_cassandra(tenant: str) -> str:
    # One smoke event per day, keyed by the day's start: re-running the smoke flow upserts it.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    event = cassandra.AnalyticsEvent(
        tenant=tenant,
        event_time=today,
        event_id="smoke",
        event_type="smoke_test",
        aggregate_id=SKU,
        amount=Decimal("19.99"),
        currency="EUR",
    )
    cassandra.write_events([event])
    found = [
        e.event_id
        for e in cassandra.events_on(tenant, event.day)
        if e.event_id == event.event_id and e.event_time.replace(tzinfo=UTC) == today
    ]
    return _expect("cassandra", ["smoke"], found)


@task(name="smoke-elasticsearch", **STORE_TASK)
def smoke_elasticsearch(tenant: str) -> str:
    # As ingestion indexes a chunk: the catalog product at its version, into the write alias.
    elasticsearch.ensure_tenant_index(tenant)
    product = {**_product(tenant), "version": VERSION}
    elasticsearch.bulk_index(tenant, elasticsearch.write_alias(tenant), [product])
    elasticsearch.refresh(tenant)
    hits = [hit["sku"] for hit in elasticsearch.search_products(tenant, "kettle")]
    return _expect("elasticsearch", [SKU], hits)


@task(name="smoke-neo4j", **STORE_TASK)
def smoke_neo4j(tenant: str) -> str:
    neo4j.merge_products(tenant, [neo4j.product_row(_product(tenant))])
    category = neo4j.products(tenant).get(SKU, {}).get("category")
    return _expect("neo4j", "kitchen/kettles", category)


ROUND_TRIPS = (
    smoke_postgres,
    smoke_mongodb,
    smoke_redis,
    smoke_cassandra,
    smoke_elasticsearch,
    smoke_neo4j,
)
