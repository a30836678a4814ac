"""A poison outbox event: refused by a store for its own sake, it must not hold up the others."""

from __future__ import annotations

from domain.outbox import MAX_DELIVERY_ATTEMPTS, ORDER_PLACED, Event
from flows.place_order import place_order
from flows.sync_outbox import sync_outbox
from stores import mongodb, postgres, redis
from stores.postgres.outbox import publish
from tasks.outbox import ROUTES
from tests.flows.test_place_order import request, seed
from tests.helpers import run_cli


def poison(tenant: str) -> int:
    """An order event without the fields every projection reads: no store can take it."""
    broken = Event(tenant, "order", "broken-1", ORDER_PLACED, {"order_id": "broken-1"})
    with postgres.unit_of_work() as session:
        [event_id] = publish(session, [broken], ROUTES)
    return event_id


def attempts(event_id: int) -> dict[str, tuple[int, bool, bool]]:
    """Per store: (attempts, dead, delivered). Other syncs (the stack's catch-up schedule, other
    tests) may deliver this event too, so tests read these, not one run's counts."""
    with postgres.unit_of_work() as session:
        rows = session.query(postgres.OutboxDelivery).filter_by(event_id=event_id).all()
        return {
            row.store: (row.attempts, row.dead_at is not None, row.delivered_at is not None)
            for row in rows
        }


def test_a_poison_event_becomes_a_dead_letter_and_other_events_keep_flowing(tenant: str) -> None:
    seed(tenant, {"MUG-1": 10})
    bad = poison(tenant)
    placed = place_order(request(tenant, "k-1", {"MUG-1": 1}), sync=False)

    first = {d.store: d for d in sync_outbox()}

    subscribers = set(ROUTES[ORDER_PLACED])
    assert redis.get_versioned(tenant, "order", placed.order_id)["status"] == "placed"
    assert mongodb.find_customer(tenant, "c-1")["email"] == "ann@example.com"
    assert {store for store, d in first.items() if d.refused} <= subscribers
    tried = attempts(bad)
    assert set(tried) == subscribers
    assert all(count >= 1 and not delivered for count, _, delivered in tried.values())

    for _ in range(MAX_DELIVERY_ATTEMPTS):
        sync_outbox()

    assert attempts(bad) == dict.fromkeys(subscribers, (MAX_DELIVERY_ATTEMPTS, True, False))
    letters = [letter for letter in postgres.dead_letters(1000) if letter.event_id == bad]
    assert {letter.store for letter in letters} == subscribers
    assert all("KeyError" in letter.error for letter in letters)
    sync_outbox()
    assert attempts(bad) == dict.fromkeys(subscribers, (MAX_DELIVERY_ATTEMPTS, True, False))

    status = run_cli("outbox", "status", "--limit", "1000", timeout=60)
    assert status.returncode == 0, status.stderr
    assert "broken-1" in status.stdout and "KeyError" in status.stdout

    replayed = run_cli("outbox", "replay", "--event", str(bad), timeout=60)
    assert replayed.returncode == 0, replayed.stderr
    assert f"{len(subscribers)} dead letter(s) re-queued" in replayed.stdout

    with postgres.unit_of_work() as session:
        session.get(postgres.OutboxEvent, bad).payload = placed_payload(tenant, placed.order_id)
    sync_outbox()
    assert all(delivered for _, _, delivered in attempts(bad).values())


def placed_payload(tenant: str, order_id: str) -> dict[str, object]:
    """The payload the broken event should have had: a copy of a real order's."""
    with postgres.unit_of_work() as session:
        real = (
            session.query(postgres.OutboxEvent)
            .filter_by(tenant_id=tenant, aggregate_id=order_id, event_type=ORDER_PLACED)
            .one()
        )
        return dict(real.payload)
