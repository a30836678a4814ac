"""Consistency pairs, each declared once, and the tasks that check and repair them.

A pair is a `domain.consistency.Pair`: the source side, the derived side, what counts as in
flight, and how to repair. PostgreSQL sides aggregate in SQL (`stores.postgres.checksums`);
the others stream (id, signature) records in bounded memory. Repairs re-derive exactly the
drifted records from the source of truth through the code that wrote them in the first place:
the outbox projections (`tasks.outbox.PROJECTIONS`, version-guarded, after clearing the drifted
entry so the guard lets the truth back in) and the catalog writers ingestion uses. A repair
writes only derived stores, only the checked tenant's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from prefect import task

from domain.consistency import (
    Digest,
    Drift,
    Pair,
    PairResult,
    Side,
    classify,
    differing_buckets,
    signature,
    unaccounted_buckets,
)
from domain.outbox import CUSTOMER_UPSERTED, ORDER_EVENTS, STOCK_CHANGED
from domain.settings import public_address, settings
from stores import cassandra, elasticsearch, mongodb, neo4j, postgres, redis
from tasks.outbox import PROJECTIONS
from tasks.retry import STORE_TASK, is_transient

checksums = postgres.checksums


class StoreUnavailable(ConnectionError):
    """A store of a pair could not be read or written: the message names it and its address."""

    def __init__(self, store: str, error: BaseException) -> None:
        address = public_address(settings().store_url(store))
        super().__init__(f"{store} ({address}) is unreachable: {type(error).__name__}: {error}")
        self.store = store


def _on(store: str, action: Callable[[], Any]) -> Any:
    """Run one store's step; a transient failure becomes `StoreUnavailable` naming the store
    (still transient, so the task's retries apply)."""
    try:
        return action()
    except StoreUnavailable:
        raise
    except Exception as error:
        if is_transient(error):
            raise StoreUnavailable(store, error) from error
        raise


# --- sides ------------------------------------------------------------------------------------


def _postgres(source: str) -> Side:
    return Side(
        postgres.STORE,
        lambda tenant: checksums.bucket_digest(source, tenant),
        lambda tenant, buckets: checksums.bucket_records(source, tenant, buckets),
    )


def _redis_hashes(kind: str, *fields: str) -> Side:
    def stream(tenant: str) -> Iterable[tuple[str, str]]:
        for record_id, values in redis.scan_hashes(tenant, kind, fields):
            yield record_id, signature(*values)

    def lookup(tenant: str, ids: Collection[str]) -> dict[str, str]:
        found = redis.read_hashes(tenant, kind, sorted(ids), fields)
        return {record_id: signature(*values) for record_id, values in found}

    return Side.streamed(redis.STORE, stream, lookup)


def _records(
    store: str, read: Callable[[str], Iterable[dict[str, Any]]], key: str, *fields: str
) -> Side:
    def stream(tenant: str) -> Iterable[tuple[str, str]]:
        for record in read(tenant):
            yield str(record[key]), signature(*(record.get(f) for f in fields))

    return Side.streamed(store, stream)


def _purchases(tenant: str) -> Iterable[tuple[str, str]]:
    for edge in neo4j.purchase_records(tenant):
        rid = f"{edge['order_id']}:{edge['sku']}"
        yield rid, signature(edge["quantity"], edge["status"], edge["version"])


def _order_events(tenant: str) -> Iterable[tuple[str, str]]:
    days = checksums.order_event_days(tenant)
    for event_id, event_type, aggregate_id in cassandra.order_event_records(tenant, days):
        yield event_id, signature(event_type, aggregate_id)


def _catalog_hashes(tenant: str) -> Iterable[tuple[str, str]]:
    for sku, content_hash in mongodb.content_hashes(tenant):
        yield sku, signature(content_hash)


def _index_hashes(tenant: str) -> Iterable[tuple[str, str]]:
    for sku, content_hash in elasticsearch.active_content(tenant):
        yield sku, signature(content_hash)


def _cache_hashes(tenant: str) -> Iterable[tuple[str, str]]:
    for sku, product in redis.scan_cached_products(tenant):
        if product is not None:  # expired between the scan and the read
            yield sku, signature(product.get("content_hash"))


def _graph_row(product: dict[str, Any]) -> str:
    row = neo4j.product_row(product) if product.get("price") is not None else product
    return signature(row.get("name"), row.get("price"), row.get("currency"), row.get("category"))


def _catalog_products(tenant: str) -> Iterable[tuple[str, str]]:
    for product in mongodb.catalog_rows(tenant):
        yield product["sku"], _graph_row(product)


def _graph_products(tenant: str) -> Iterable[tuple[str, str]]:
    for node in neo4j.product_records(tenant):
        yield node["sku"], _graph_row(node)


# --- in flight --------------------------------------------------------------------------------


def _pending(store: str, aggregate: Callable[[str], str] = lambda rid: rid) -> Any:
    """Records whose aggregate has outbox events still pending for `store`."""

    def in_flight(tenant: str, started_at: datetime) -> Callable[[str], bool]:
        pending = checksums.pending_aggregates(tenant, store)
        return lambda record_id: aggregate(record_id) in pending

    return in_flight


def _order_of(record_id: str) -> str:
    return record_id.partition(":")[0]


def _fresh_catalog(tenant: str, started_at: datetime) -> Callable[[str], bool]:
    """Products written since the check started: ingestion may still be fanning them out."""
    fresh = mongodb.updated_since(tenant, started_at)
    return fresh.__contains__


# --- repairs ----------------------------------------------------------------------------------


def _project(store: str, tenant: str, aggregates: Collection[str], types: Collection[str]) -> int:
    """Re-deliver each aggregate's newest outbox event to `store` through its projection."""
    events = checksums.latest_events(tenant, aggregates, types)
    PROJECTIONS[store](events)
    return len(events)


def _redis_repair(kind: str, types: Collection[str]) -> Callable[[str, Drift], int]:
    def repair(tenant: str, drift: Drift) -> int:
        redis.delete_keys(tenant, kind, drift.ids)
        return _project(redis.STORE, tenant, [*drift.missing, *drift.stale], types)

    return repair


def _repair_purchases(tenant: str, drift: Drift) -> int:
    neo4j.delete_purchases(tenant, [tuple(rid.split(":", 1)) for rid in drift.ids])
    orders = {_order_of(rid) for rid in [*drift.missing, *drift.stale]}
    return _project(neo4j.STORE, tenant, orders, ORDER_EVENTS)


def _repair_order_events(tenant: str, drift: Drift) -> int:
    days = checksums.order_event_days(tenant)
    cassandra.delete_order_events(tenant, days, [*drift.extra, *drift.stale])
    ids = [int(rid.removeprefix(cassandra.OUTBOX_EVENT_PREFIX)) for rid in drift.missing]
    ids += [int(rid.removeprefix(cassandra.OUTBOX_EVENT_PREFIX)) for rid in drift.stale]
    events = checksums.events_by_id(tenant, ids)
    PROJECTIONS[cassandra.STORE](events)
    return len(events)


def _repair_mongodb_customers(tenant: str, drift: Drift) -> int:
    mongodb.delete_customers(tenant, drift.ids)
    return _project(mongodb.STORE, tenant, [*drift.missing, *drift.stale], {CUSTOMER_UPSERTED})


def _repair_neo4j_customers(tenant: str, drift: Drift) -> int:
    neo4j.delete_nodes(tenant, "Customer", "customer_id", drift.extra)
    neo4j.reset_customers(tenant, drift.stale)
    return _project(neo4j.STORE, tenant, [*drift.missing, *drift.stale], {CUSTOMER_UPSERTED})


def _repair_index(tenant: str, drift: Drift) -> int:
    """Delete the extra documents, then index MongoDB's products as ingestion and reindex do
    (`bulk_index`), at `external_gte`: a drifted document at the catalog's own version (or a
    deleted one's tombstone) is rewritten, a newer one never."""
    index = elasticsearch.active_index(tenant)
    if index is None:
        return 0
    deleted = elasticsearch.delete_documents(index, drift.extra)
    products = mongodb.find_products(tenant, [*drift.missing, *drift.stale])
    written = elasticsearch.bulk_index(tenant, index, products.values(), "external_gte")
    elasticsearch.refresh(tenant)
    return deleted + written


def _repair_cache(tenant: str, drift: Drift) -> int:
    deleted = redis.delete_keys(tenant, "product", drift.extra)
    products = mongodb.find_products(tenant, [*drift.missing, *drift.stale])
    redis.cache_products(tenant, products)
    return deleted + len(products)


def _repair_graph_products(tenant: str, drift: Drift) -> int:
    neo4j.delete_nodes(tenant, "Product", "sku", drift.extra)
    products = mongodb.find_products(tenant, [*drift.missing, *drift.stale])
    neo4j.merge_products(tenant, [neo4j.product_row(p) for p in products.values()])
    return len(products)


# --- the pairs --------------------------------------------------------------------------------

PAIRS: dict[str, Pair] = {
    pair.name: pair
    for pair in (
        Pair(
            "orders-redis",
            _postgres("orders"),
            _redis_hashes("order", "version", "status"),
            _pending(redis.STORE),
            _redis_repair("order", ORDER_EVENTS),
        ),
        Pair(
            "orders-cassandra",
            _postgres("order_events"),
            Side.streamed(cassandra.STORE, _order_events),
            _pending(cassandra.STORE),
            _repair_order_events,
        ),
        Pair(
            "orders-neo4j",
            _postgres("order_lines"),
            Side.streamed(neo4j.STORE, _purchases),
            _pending(neo4j.STORE, _order_of),
            _repair_purchases,
        ),
        Pair(
            "inventory-redis",
            _postgres("inventory"),
            _redis_hashes("stock", "version", "on_hand"),
            _pending(redis.STORE),
            _redis_repair("stock", {STOCK_CHANGED}),
        ),
        Pair(
            "users-mongodb",
            _postgres("users"),
            _records(
                mongodb.STORE, mongodb.customer_records, "customer_id", "version", "email", "name"
            ),
            _pending(mongodb.STORE),
            _repair_mongodb_customers,
        ),
        Pair(
            "users-redis",
            _postgres("users"),
            _redis_hashes("customer", "version", "email", "name"),
            _pending(redis.STORE),
            _redis_repair("customer", {CUSTOMER_UPSERTED}),
        ),
        Pair(
            "users-neo4j",
            _postgres("users"),
            _records(
                neo4j.STORE, neo4j.customer_records, "customer_id", "version", "email", "name"
            ),
            _pending(neo4j.STORE),
            _repair_neo4j_customers,
        ),
        Pair(
            "catalog-elasticsearch",
            Side.streamed(mongodb.STORE, _catalog_hashes),
            Side.streamed(elasticsearch.STORE, _index_hashes),
            _fresh_catalog,
            _repair_index,
            rebuild="reindex-search",
        ),
        Pair(
            "catalog-redis",
            Side.streamed(mongodb.STORE, _catalog_hashes),
            Side.streamed(redis.STORE, _cache_hashes),
            _fresh_catalog,
            _repair_cache,
            missing_is_drift=False,
        ),
        Pair(
            "catalog-neo4j",
            Side.streamed(mongodb.STORE, _catalog_products),
            Side.streamed(neo4j.STORE, _graph_products),
            _fresh_catalog,
            _repair_graph_products,
        ),
    )
}
"""Every (source of truth -> derived store) pair the check compares, per tenant."""


# --- tasks ------------------------------------------------------------------------------------


def compare(
    tenant: str, pair: Pair, started_at: datetime, buckets: Collection[int] | None = None
) -> PairResult:
    """Digest both sides (unless the buckets are given), then compare only the differing
    buckets record by record. The source is read first: a record it has that reaches the
    derived store meanwhile is then in both, not missing."""
    source, derived = pair.source, pair.derived
    records = derived_records = 0
    derived_digest: Digest | None = None
    if buckets is None:
        source_digest: Digest = _on(source.store, lambda: source.digest(tenant))
        derived_digest = _on(derived.store, lambda: derived.digest(tenant))
        records, derived_records = source_digest.records, derived_digest.records
        buckets = differing_buckets(source_digest, derived_digest)
    buckets = sorted(buckets)
    if not buckets:
        return PairResult(pair.name, source.store, derived.store, records, derived_records)
    source_records = _on(source.store, lambda: source.records(tenant, buckets))
    derived_found = _derived_records(tenant, derived, derived_digest, source_records, buckets)
    in_flight = (
        _on(source.store, lambda: pair.in_flight(tenant, started_at))
        if pair.in_flight
        else (lambda _: False)
    )
    drift = classify(source_records, derived_found, in_flight, pair.missing_is_drift)
    return PairResult(
        pair.name,
        source.store,
        derived.store,
        records or len(source_records),
        derived_records or len(derived_found),
        buckets,
        drift,
    )


def _derived_records(
    tenant: str,
    derived: Side,
    digest: Digest | None,
    source_records: dict[str, str],
    buckets: list[int],
) -> dict[str, str]:
    """The derived side's records of the differing buckets: by point reads of the source's ids
    where the side has them, streaming again only the buckets those reads do not account for."""
    if derived.lookup is None or digest is None:
        return _on(derived.store, lambda: derived.records(tenant, buckets))
    found = _on(derived.store, lambda: derived.lookup(tenant, source_records))
    rest = unaccounted_buckets(digest, found, buckets)
    if rest:
        found |= _on(derived.store, lambda: derived.records(tenant, rest))
    return found


@task(name="check-pair", task_run_name="check-{pair_name}-{tenant}", **STORE_TASK)
def check_pair(
    tenant: str, pair_name: str, started_at: datetime, buckets: list[int] | None = None
) -> PairResult:
    """One pair of one tenant: counts and checksums per bucket, then records where they differ."""
    return compare(tenant, PAIRS[pair_name], started_at, buckets)


@task(name="repair-pair", task_run_name="repair-{pair_name}-{tenant}", **STORE_TASK)
def repair_pair(tenant: str, pair_name: str, drift: Drift) -> int:
    """Re-derive exactly the drifted records of one pair of one tenant from the source of truth;
    safe to repeat (every write is keyed and guarded). Returns how many records were rewritten."""
    pair = PAIRS[pair_name]
    if pair.repair is None or not drift.total:
        return 0
    return _on(pair.derived.store, lambda: pair.repair(tenant, drift))


@task(name="consistency-tenants", **STORE_TASK)
def tenants() -> list[str]:
    """Every tenant of either source of truth."""
    found = _on(postgres.STORE, checksums.known_tenants)
    found += _on(mongodb.STORE, mongodb.catalog_tenants)
    return sorted(set(found))
