from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from stores import cassandra


def event(
    tenant: str, event_id: str, at: datetime, amount: str = "10.00"
) -> cassandra.AnalyticsEvent:
    return cassandra.AnalyticsEvent(
        tenant=tenant,
        event_time=at,
        event_id=event_id,
        event_type="order_placed",
        aggregate_id=f"order-{event_id}",
        amount=Decimal(amount),
        currency="EUR",
    )


def test_events_round_trip_in_time_order_and_replay_is_idempotent(tenant: str) -> None:
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    events = [event(tenant, str(i), start + timedelta(minutes=i)) for i in range(50)]

    cassandra.write_events(events)
    cassandra.write_events(events[:10])

    stored = cassandra.events_on(tenant, start.date())
    assert [e.event_id for e in stored] == [str(i) for i in range(50)]
    assert stored[3].amount == Decimal("10.00")
    assert stored[3].event_time.replace(tzinfo=UTC) == start + timedelta(minutes=3)


def test_days_and_tenants_are_separate_partitions(tenant: str) -> None:
    day_one = datetime(2026, 11, 24, 23, 59, tzinfo=UTC)
    cassandra.write_events(
        [
            event(tenant, "a", day_one),
            event(tenant, "b", day_one + timedelta(minutes=2)),
            event(f"{tenant}-other", "c", day_one),
        ]
    )

    assert [e.event_id for e in cassandra.events_on(tenant, day_one.date())] == ["a"]
    assert [e.event_id for e in cassandra.events_on(tenant, (day_one + timedelta(1)).date())] == [
        "b"
    ]


def test_cql_looking_strings_are_stored_literally(tenant: str) -> None:
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    sneaky = "x'; DROP KEYSPACE polyflow; --"
    cassandra.write_events([event(tenant, sneaky, at)])

    assert [e.event_id for e in cassandra.events_on(tenant, at.date())] == [sneaky]
