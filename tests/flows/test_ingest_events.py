"""`ingest-events` against the real Cassandra, Redis and MongoDB (quarantine)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from domain.analytics import hour_of
from domain.traffic import synthetic_events
from expectations.events import write_events_file
from flows.ingest_events import ingest_events
from flows.quarantine_gate import RejectShareExceeded
from stores import cassandra, mongodb, redis


def stored(tenant: str, days: set) -> Counter:
    found: Counter = Counter()
    for day in days:
        _, events = cassandra.day_events(tenant, day)
        found.update((hour_of(e.occurred_at), e.event_type) for e in events)
    return found


def bad_rows(tenant: str, now: datetime) -> list[dict[str, Any]]:
    base = {
        "event_id": "bad-1",
        "tenant": tenant,
        "occurred_at": now.isoformat(),
        "event_type": "product_viewed",
        "user_id": "c-1",
        "session_id": "s-bad",
        "sku": "SKU-0001",
    }
    return [
        {**base, "event_type": "teleported"},
        {**base, "event_id": "bad-2", "occurred_at": (now + timedelta(days=2)).isoformat()},
        {**base, "event_id": "bad-3", "sku": None},
    ]


def test_events_land_once_in_cassandra_and_redis(tenant: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    events = list(synthetic_events(tenant, now - timedelta(hours=3), now, 400, seed=7))
    path = tmp_path / "events.jsonl"
    write_events_file(path, [*events, *bad_rows(tenant, now)])

    summary = ingest_events(str(path), tenant, chunk_size=150)
    assert (summary.rows_read, summary.stored, summary.rejected) == (403, 400, 3)
    assert summary.counted == 400

    expected = Counter(
        (hour_of(datetime.fromisoformat(e["occurred_at"])), e["event_type"]) for e in events
    )
    days = {hour.date() for hour, _ in expected}
    assert stored(tenant, days) == expected
    for hour in {hour for hour, _ in expected}:
        live = redis.live_counters(tenant, int(hour.timestamp()))
        assert live == {t: n for (h, t), n in expected.items() if h == hour}
    user = events[0]["user_id"]
    mine = [e for e in events if e["user_id"] == user]
    by_user = sum(len(cassandra.user_events(tenant, user, d)) for d in days)
    assert by_user == len(mine)

    rejects = {r["line"]: r["reason"] for r in mongodb.rejects_of(tenant, str(path))}
    assert rejects[401].startswith("event_type is not one of")
    assert rejects[402] == "occurred_at is in the future"
    assert "sku is missing" in rejects[403]

    again = ingest_events(str(path), tenant, chunk_size=150)
    assert again.counted == 0
    assert stored(tenant, days) == expected
    for hour in {hour for hour, _ in expected}:
        live = redis.live_counters(tenant, int(hour.timestamp()))
        assert sum(live.values()) == sum(n for (h, _), n in expected.items() if h == hour)


def test_parquet_reads_like_jsonl(tenant: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    events = list(synthetic_events(tenant, now - timedelta(hours=2), now, 120, seed=3))
    path = tmp_path / "events.parquet"
    write_events_file(path, events)
    summary = ingest_events(str(path), tenant)
    assert (summary.rows_read, summary.stored, summary.rejected) == (120, 120, 0)
    days = {datetime.fromisoformat(e["occurred_at"]).date() for e in events}
    assert sum(stored(tenant, days).values()) == 120


def test_reject_share_gate_stores_nothing(tenant: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    events = list(synthetic_events(tenant, now - timedelta(hours=1), now, 20, seed=5))
    path = tmp_path / "events.jsonl"
    write_events_file(path, [*events, *bad_rows(tenant, now)])
    with pytest.raises(RejectShareExceeded, match="3 of 23 events"):
        ingest_events(str(path), tenant)
    assert stored(tenant, {now.date(), (now - timedelta(hours=1)).date()}) == Counter()
    assert len(mongodb.rejects_of(tenant, str(path))) == 3


def test_sessions_never_revived_nor_moved_back(tenant: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)

    def event(n: int, session: str, at: datetime, kind: str = "product_viewed") -> dict:
        return {
            "event_id": f"e-{n}",
            "tenant": tenant,
            "occurred_at": at.isoformat(),
            "event_type": kind,
            "user_id": "c-9",
            "session_id": session,
            "sku": "SKU-1",
            "properties": {"quantity": 2} if kind == "added_to_cart" else {},
        }

    live = [
        event(1, "live", now - timedelta(minutes=5)),
        event(2, "live", now - timedelta(minutes=2), "added_to_cart"),
    ]
    path = tmp_path / "live.jsonl"
    write_events_file(path, live)
    ingest_events(str(path), tenant)
    session = redis.session_summary(tenant, "live")
    assert session["pages_viewed"] == "1" and session["cart:SKU-1"] == "2"
    last_seen = float(session["last_seen"])
    assert last_seen == pytest.approx((now - timedelta(minutes=2)).timestamp())

    late = [
        event(3, "live", now - timedelta(minutes=20)),
        event(4, "gone", now - timedelta(hours=2)),
    ]
    path = tmp_path / "late.jsonl"
    write_events_file(path, late)
    ingest_events(str(path), tenant)
    session = redis.session_summary(tenant, "live")
    assert float(session["last_seen"]) == last_seen
    assert session["pages_viewed"] == "2"
    assert redis.session_summary(tenant, "gone") == {}
    assert 0 < redis.client().ttl(redis.key(tenant, "session", "live")) <= 30 * 60
    assert json.loads(json.dumps(session))
