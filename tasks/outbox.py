"""Outbox delivery: project PostgreSQL's outbox events into each derived store.

Each store has one projection, declared once here with the event types it subscribes to; the
routes every publisher passes to PostgreSQL come from these declarations. A projection takes a
batch of events and writes what its store keeps of them with the store's bulk API. Every write
is keyed by a natural id and guarded by the aggregate's version, so delivering a batch twice
(at-least-once) leaves the store as it was.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from prefect import task
from prefect.states import State

from domain.outbox import (
    CUSTOMER_UPSERTED,
    EVENT_TYPES,
    ORDER_EVENTS,
    STOCK_CHANGED,
    OutboxMessage,
)
from stores import cassandra, mongodb, neo4j, postgres, redis
from tasks.retry import STORE_TASK, is_transient


def _by_tenant(events: Sequence[OutboxMessage]) -> dict[str, list[OutboxMessage]]:
    """The events grouped by tenant, in event order."""
    grouped: dict[str, list[OutboxMessage]] = defaultdict(list)
    for event in events:
        grouped[event.tenant].append(event)
    return grouped


def project_to_redis(events: Sequence[OutboxMessage]) -> None:
    """Order status, each customer's recent orders, stock counters and customer profiles."""
    for tenant, batch in _by_tenant(events).items():
        entries = []
        placed = []
        for event in batch:
            p = event.payload
            if event.event_type in ORDER_EVENTS:
                fields = {k: str(p[k]) for k in ("status", "customer_id", "total", "currency")}
                entries.append(redis.Versioned(("order", p["order_id"]), p["version"], fields))
                placed.append((p["customer_id"], p["order_id"], event.created_at.timestamp()))
            elif event.event_type == STOCK_CHANGED:
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
    cassandra.write_events(
        [
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
            for event in events
        ]
    )


def project_to_neo4j(events: Sequence[OutboxMessage]) -> None:
    """Customer nodes and Customer-PURCHASED->Product edges with quantities."""
    for tenant, batch in _by_tenant(events).items():
        customers = [e.payload for e in batch if e.event_type == CUSTOMER_UPSERTED]
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
    for tenant, batch in _by_tenant(events).items():
        mongodb.upsert_customers(tenant, [event.payload for event in batch])


@dataclass(frozen=True)
class Projection:
    """A derived store's view of the outbox: the event types it takes and how it writes them."""

    store: str
    events: frozenset[str]
    project: Callable[[Sequence[OutboxMessage]], None]

    def __call__(self, events: Sequence[OutboxMessage]) -> None:
        """Project the events this store subscribes to; others are not its business."""
        self.project([event for event in events if event.event_type in self.events])


PROJECTIONS: dict[str, Projection] = {
    projection.store: projection
    for projection in (
        Projection(redis.STORE, EVENT_TYPES, project_to_redis),
        Projection(cassandra.STORE, ORDER_EVENTS, project_to_cassandra),
        Projection(neo4j.STORE, ORDER_EVENTS | {CUSTOMER_UPSERTED}, project_to_neo4j),
        Projection(mongodb.STORE, frozenset({CUSTOMER_UPSERTED}), project_to_mongodb),
    )
}
"""The derived stores the outbox feeds, each with its own delivery record."""

ROUTES: postgres.Routes = {
    event_type: tuple(p.store for p in PROJECTIONS.values() if event_type in p.events)
    for event_type in EVENT_TYPES
}
"""Event type -> the stores that receive it: what every publisher hands PostgreSQL."""


@dataclass(frozen=True)
class Delivered:
    store: str
    events: int
    batches: int
    refused: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one store made of its share of a batch: the events it took, and those it refused
    for their own sake, each with the error."""

    delivered: list[int]
    refused: dict[int, str]


def _isolate(projection: Projection, events: Sequence[OutboxMessage]) -> Outcome:
    """Find the events a store refuses by halving the batch: a few poison events cost a few
    writes more, not one write per event. A transient error means the store itself is in
    trouble, not an event: it propagates, so the task's retries and the run's bookkeeping see
    a store that is behind."""
    try:
        projection(events)
    except Exception as error:
        if is_transient(error):
            raise
        if len(events) == 1:
            return Outcome([], {events[0].event_id: f"{type(error).__name__}: {error}"})
        middle = len(events) // 2
        first, second = _isolate(projection, events[:middle]), _isolate(projection, events[middle:])
        return Outcome(first.delivered + second.delivered, first.refused | second.refused)
    return Outcome([event.event_id for event in events], {})


@task(name="deliver-outbox", task_run_name="deliver-outbox-{store}", **STORE_TASK)
def deliver(store: str, events: list[OutboxMessage]) -> Outcome:
    """Write one claimed batch into one store. A store that is down fails the task (retried
    with backoff) and leaves the batch pending for that store alone; the next run sends it
    again, which the projections make harmless. Events the store refuses are set apart."""
    return _isolate(PROJECTIONS[store], events)


def deliver_claim(claim: postgres.Claim, retries: int) -> dict[str, State]:
    """Deliver a claimed batch to each of its stores concurrently, one task per store; record
    what each store accepted and refused. Returns each store's final task state."""
    attempt = deliver.with_options(retries=retries)
    futures = {store: attempt.submit(store, claim.messages_for(store)) for store in claim.stores}
    states: dict[str, State] = {}
    for store, future in futures.items():
        future.wait()
        states[store] = future.state
        if future.state.is_completed():
            outcome: Outcome = future.state.result()
            claim.delivered(store, outcome.delivered)
            claim.refused(store, outcome.refused)
    return states


def deliver_now(event_ids: Sequence[int]) -> list[str]:
    """Deliver just these events, right after the commit that wrote them: one attempt per
    store, so a down store never holds up the caller. Returns the stores still behind."""
    stores = list(PROJECTIONS)
    with postgres.claim_pending(stores, len(event_ids), event_ids) as claim:
        states = deliver_claim(claim, retries=0)
    return [store for store, state in states.items() if not state.is_completed()]
