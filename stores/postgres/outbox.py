"""The transactional outbox in PostgreSQL: publish events with a change, hand them out in batches.

The store does not decide who subscribes: publishers pass `routes` (event type -> the stores
that receive it), which the projections declare once. Each (event, store) pair has its own
delivery row, so a store that is down keeps only its own rows pending.

Consumption reads a batch once for all stores: one statement claims the pending delivery rows
(`FOR UPDATE SKIP LOCKED`, so two concurrent syncs never send the same rows at once) with their
events, and one statement stamps every pair the stores accepted when the block ends.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from domain.outbox import MAX_DELIVERY_ATTEMPTS, Event, OutboxMessage
from stores.postgres.schema import unit_of_work

Routes = Mapping[str, Collection[str]]
"""Event type -> the stores that receive events of that type."""

PUBLISH = text(
    """
    WITH new_events AS (
        INSERT INTO outbox (tenant_id, aggregate_type, aggregate_id, event_type, payload)
        SELECT * FROM unnest(
            CAST(:tenants AS text[]), CAST(:aggregate_types AS text[]),
            CAST(:aggregate_ids AS text[]), CAST(:event_types AS text[]),
            CAST(:payloads AS jsonb[]))
        RETURNING event_id, event_type
    )
    INSERT INTO outbox_deliveries (event_id, store)
    SELECT new_events.event_id, routes.store
    FROM new_events
    JOIN unnest(CAST(:route_types AS text[]), CAST(:route_stores AS text[]))
        AS routes(event_type, store) USING (event_type)
    RETURNING event_id
    """
)

_CLAIM = """
    WITH next_events AS (
        SELECT DISTINCT event_id FROM outbox_deliveries
        WHERE delivered_at IS NULL AND dead_at IS NULL AND store = ANY(:stores) {only}
        ORDER BY event_id
        LIMIT :limit
    ),
    claimed AS (
        SELECT d.event_id, d.store FROM outbox_deliveries d JOIN next_events USING (event_id)
        WHERE d.delivered_at IS NULL AND d.dead_at IS NULL AND d.store = ANY(:stores)
        FOR UPDATE OF d SKIP LOCKED
    )
    SELECT e.event_id, e.tenant_id, e.aggregate_type, e.aggregate_id, e.event_type,
           e.payload, e.created_at, array_agg(claimed.store) AS stores
    FROM claimed JOIN outbox e USING (event_id)
    GROUP BY e.event_id
    ORDER BY e.event_id
"""
"""The next `limit` events with a live pending delivery, and all of their pending pairs: a
batch never splits an event's stores, so a run's cursor never skips a pair."""
CLAIM_NEXT = text(_CLAIM.format(only="AND event_id > :after"))
CLAIM_EVENTS = text(_CLAIM.format(only="AND event_id = ANY(:only)"))

RECORD_FAILURES = text(
    """
    UPDATE outbox_deliveries d
    SET attempts = d.attempts + 1, last_error = failed.error,
        dead_at = CASE WHEN d.attempts + 1 >= :max_attempts THEN now() END
    FROM unnest(CAST(:event_ids AS bigint[]), CAST(:stores AS text[]), CAST(:errors AS text[]))
        AS failed(event_id, store, error)
    WHERE d.event_id = failed.event_id AND d.store = failed.store
    """
)

MARK = text(
    """
    UPDATE outbox_deliveries d SET delivered_at = now()
    FROM unnest(CAST(:event_ids AS bigint[]), CAST(:stores AS text[])) AS done(event_id, store)
    WHERE d.event_id = done.event_id AND d.store = done.store
    """
)


def publish(session: Session, events: Sequence[Event], routes: Routes) -> list[int]:
    """Add events with a pending delivery per subscribing store, in the caller's transaction:
    they commit or roll back with the change they describe. One statement however many."""
    if not events:
        return []
    unrouted = sorted({e.event_type for e in events} - set(routes))
    if unrouted:
        raise ValueError(f"no store subscribes to outbox event(s) {', '.join(unrouted)}")
    pairs = [(event_type, store) for event_type, stores in routes.items() for store in stores]
    ids = session.execute(
        PUBLISH,
        {
            "tenants": [e.tenant for e in events],
            "aggregate_types": [e.aggregate_type for e in events],
            "aggregate_ids": [e.aggregate_id for e in events],
            "event_types": [e.event_type for e in events],
            "payloads": [json.dumps(e.payload) for e in events],
            "route_types": [event_type for event_type, _ in pairs],
            "route_stores": [store for _, store in pairs],
        },
    ).scalars()
    return sorted(set(ids))


def outbox_message(row: Any) -> OutboxMessage:
    """An outbox row (an `OutboxEvent`, or a result row naming it) as a derived store gets it."""
    return OutboxMessage(
        event_id=row.event_id,
        tenant=row.tenant_id,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        event_type=row.event_type,
        payload=row.payload,
        created_at=row.created_at,
    )


@dataclass
class Claim:
    """A batch of pending events claimed for some stores. `delivered` records what a store
    accepted and `refused` what it refused for the event's own sake; both are written when the
    claim's block ends, nothing else is."""

    messages: list[OutboxMessage]
    stores_of: dict[int, list[str]]
    accepted: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    refusals: dict[str, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))

    @property
    def stores(self) -> list[str]:
        return sorted({store for stores in self.stores_of.values() for store in stores})

    def messages_for(self, store: str) -> list[OutboxMessage]:
        return [m for m in self.messages if store in self.stores_of[m.event_id]]

    def delivered(self, store: str, event_ids: Collection[int] | None = None) -> None:
        """The store has these events (default: all of its share of the claim)."""
        ids = [m.event_id for m in self.messages_for(store)] if event_ids is None else event_ids
        self.accepted[store] = list(ids)

    def refused(self, store: str, errors: Mapping[int, str]) -> None:
        """The store refused these events, each with its error: one attempt more each."""
        self.refusals[store] = dict(errors)


@contextmanager
def claim_pending(
    stores: Sequence[str],
    limit: int,
    event_ids: Sequence[int] | None = None,
    max_attempts: int = MAX_DELIVERY_ATTEMPTS,
    after: int = 0,
) -> Iterator[Claim]:
    """Claim the pending (event, store) pairs of up to `limit` events for `stores`, oldest first,
    optionally only among `event_ids` or only after event `after` (a run's cursor, so one run
    tries an event once); when the block ends, stamp those marked `delivered` and
    count an attempt for those `refused` (dead letters after `max_attempts`).

    If the block raises, nothing is stamped and the events stay pending. The stamps commit
    without waiting for the WAL flush: one lost in a crash only means a harmless redelivery.
    """
    with unit_of_work() as session:
        session.execute(text("SET LOCAL synchronous_commit = off"))
        parameters = {
            "stores": list(stores),
            "limit": limit,
            "only": list(event_ids or ()),
            "after": after,
        }
        rows = session.execute(CLAIM_EVENTS if event_ids else CLAIM_NEXT, parameters).all()
        claim = Claim(
            messages=[outbox_message(row) for row in rows],
            stores_of={row.event_id: row.stores for row in rows},
        )
        yield claim
        done = [(event_id, store) for store, ids in claim.accepted.items() for event_id in ids]
        if done:
            session.execute(
                MARK,
                {"event_ids": [pair[0] for pair in done], "stores": [pair[1] for pair in done]},
            )
        failed = [
            (event_id, store, error)
            for store, errors in claim.refusals.items()
            for event_id, error in errors.items()
        ]
        if failed:
            session.execute(
                RECORD_FAILURES,
                {
                    "event_ids": [row[0] for row in failed],
                    "stores": [row[1] for row in failed],
                    "errors": [row[2][:2000] for row in failed],
                    "max_attempts": max_attempts,
                },
            )


_COUNT = "SELECT store, count(*) FROM outbox_deliveries WHERE delivered_at IS NULL AND {alive} "
COUNT_PENDING = text(_COUNT.format(alive="dead_at IS NULL") + "GROUP BY store")
COUNT_DEAD = text(_COUNT.format(alive="dead_at IS NOT NULL") + "GROUP BY store")


def pending_deliveries(stores: Sequence[str], dead: bool = False) -> dict[str, int]:
    """How many live events each store has not received yet, or with `dead` its dead letters."""
    with unit_of_work() as session:
        pending = dict(session.execute(COUNT_DEAD if dead else COUNT_PENDING).all())
    return {store: pending.get(store, 0) for store in stores}


@dataclass(frozen=True)
class DeadLetter:
    event_id: int
    store: str
    tenant: str
    event_type: str
    aggregate_id: str
    attempts: int
    error: str
    dead_at: datetime


def dead_letters(limit: int = 100) -> list[DeadLetter]:
    """The oldest dead letters, with the error each store gave last."""
    with unit_of_work() as session:
        rows = session.execute(
            text(
                """
                SELECT d.event_id, d.store, e.tenant_id AS tenant, e.event_type, e.aggregate_id,
                       d.attempts, coalesce(d.last_error, '') AS error, d.dead_at
                FROM outbox_deliveries d JOIN outbox e USING (event_id)
                WHERE d.dead_at IS NOT NULL AND d.delivered_at IS NULL
                ORDER BY d.event_id, d.store
                LIMIT :limit
                """
            ),
            {"limit": limit},
        ).all()
    return [DeadLetter(**row._mapping) for row in rows]


def replay_dead_letters(store: str | None = None, event_ids: Sequence[int] | None = None) -> int:
    """Put dead letters back in their store's queue with a fresh count of attempts (all, or
    one store's, or the given events'); returns how many."""
    with unit_of_work() as session:
        result = session.execute(
            text(
                """
                UPDATE outbox_deliveries SET dead_at = NULL, attempts = 0
                WHERE dead_at IS NOT NULL AND delivered_at IS NULL
                  AND (CAST(:store AS text) IS NULL OR store = :store)
                  AND (CAST(:event_ids AS bigint[]) IS NULL OR event_id = ANY(:event_ids))
                """
            ),
            {"store": store, "event_ids": list(event_ids) if event_ids else None},
        )
        return result.rowcount
