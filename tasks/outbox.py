"""Outbox delivery: project PostgreSQL's outbox events into each derived store.

Each store has one projection, which takes a batch of events and writes what that store keeps
of them with its bulk API. Every write is keyed by a natural id and guarded by the aggregate's
version, so delivering a batch twice (at-least-once) leaves the store as it was.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from prefect import task
from prefect.cache_policies import NONE

from stores import cassandra, mongodb, neo4j, postgres, redis
from stores.postgres import OutboxMessage
from tasks.retry import TRANSIENT_RETRIES

ORDER_EVENTS = frozenset({"order_placed", "order_cancelled"})


def _by_tenant(
    events: Sequence[OutboxMessage], types: frozenset[str]
) -> dict[str, list[OutboxMessage]]:
    """The events of the given types, grouped by tenant in event order."""
    grouped: dict[str, list[OutboxMessage]] = defaultdict(list)
    for event in events:
        if event.event_type in types:
            grouped[event.tenant].append(event)
    return grouped


def project_to_redis(events: Sequence[OutboxMessage]) -> None:
    """Order status, each customer's recent orders, stock counters and customer profiles."""
    for tenant, batch in _by_tenant(
        events, ORDER_EVENTS | {"stock_changed", "customer_upserted"}
    ).items():
        entries = []
        placed = []
        for event in batch:
            p = event.payload
            if event.event_type in ORDER_EVENTS:
                fields = {k: str(p[k]) for k in ("status", "customer_id", "total", "currency")}
                entries.append(redis.Versioned(("order", p["order_id"]), p["version"], fields))
                placed.append((p["customer_id"], p["order_id"], event.created_at.timestamp()))
            elif event.event_type == "stock_changed":
                fields = {"on_hand": str(p["on_hand"])}
                entries.append(redis.Versioned(("stock", p["sku"]), p["version"], fields))
            else:
                fields = {"email": p["email"], "name": p["name"]}
                entries.append(
                    redis.Versioned(("customer", p["customer_id"]), p["version"], fields)
                )
        redis.put_versioned(tenant, entries)
        redis.remember_orders(tenant, placed)


def project_to_cassandra(events: Sequence[OutboxMessage]) -> None:
    """Order analytics events, partitioned by tenant and day, keyed by the outbox event id."""
    rows = [
        cassandra.AnalyticsEvent(
            tenant=event.tenant,
            event_time=event.created_at,
            event_id=f"outbox-{event.event_id}",
            event_type=event.event_type,
            aggregate_id=event.aggregate_id,
            amount=Decimal(event.payload["total"]),
            currency=event.payload["currency"],
            payload=json.dumps(event.payload["lines"], sort_keys=True),
        )
        for batch in _by_tenant(events, ORDER_EVENTS).values()
        for event in batch
    ]
    cassandra.write_events(rows)


def project_to_neo4j(events: Sequence[OutboxMessage]) -> None:
    """Customer nodes and Customer-PURCHASED->Product edges with quantities."""
    for tenant, batch in _by_tenant(events, ORDER_EVENTS | {"customer_upserted"}).items():
        customers = [e.payload for e in batch if e.event_type == "customer_upserted"]
        purchases = [
            {
                "customer_id": e.payload["customer_id"],
                "order_id": e.payload["order_id"],
                "status": e.payload["status"],
                "version": e.payload["version"],
                **line,
            }
            for e in batch
            if e.event_type in ORDER_EVENTS
            for line in e.payload["lines"]
        ]
        if customers:
            neo4j.merge_customers(tenant, customers)
        if purchases:
            neo4j.merge_purchases(tenant, purchases)


def project_to_mongodb(events: Sequence[OutboxMessage]) -> None:
    """Customer profiles next to the catalog, for the storefront."""
    for tenant, batch in _by_tenant(events, frozenset({"customer_upserted"})).items():
        mongodb.upsert_customers(tenant, [event.payload for event in batch])


PROJECTIONS: dict[str, Callable[[Sequence[OutboxMessage]], None]] = {
    redis.STORE: project_to_redis,
    cassandra.STORE: project_to_cassandra,
    neo4j.STORE: project_to_neo4j,
    mongodb.STORE: project_to_mongodb,
}
"""The derived stores the outbox feeds, each with its own delivery record."""


@dataclass(frozen=True)
class Delivered:
    store: str
    events: int
    batches: int


@task(
    name="deliver-outbox",
    task_run_name="deliver-outbox-{store}",
    cache_policy=NONE,
    **TRANSIENT_RETRIES,
)
def deliver(store: str, batch_size: int, max_batches: int) -> Delivered:
    """Deliver pending events to one store, batch by batch, until none is left.

    A batch is marked delivered only after the store accepted it; a failure leaves it pending
    and the retry (or the next run) sends it again, which the projections make harmless.
    """
    project = PROJECTIONS[store]
    events = batches = 0
    while batches < max_batches:
        with postgres.outbox_batch(store, batch_size) as batch:
            if batch:
                project(batch)
        if not batch:
            break
        events += len(batch)
        batches += 1
    return Delivered(store, events, batches)
