"""`rollup-analytics` and `replay-analytics` against the real Cassandra and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.artifacts import artifact_key
from flows.rollup_analytics import ReconciliationFailed, replay_analytics, rollup_analytics
from stores import cassandra
from tests.analytics_helpers import (
    EXPECTED_DAY,
    EXPECTED_HOURS,
    known_day,
    seed_known_day,
    view,
)


def artifacts_of(flow_run_id) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found if a.key}


def test_known_orders_and_events_give_exact_rollups_twice(tenant: str) -> None:
    day = known_day()
    seed_known_day(tenant, day)
    other = f"{tenant}-b"
    cassandra.write_storefront_events(
        [view(other, 1, day + timedelta(hours=10, minutes=7), "product_viewed", "x-1")]
    )

    for _ in range(2):
        summary = rollup_analytics(tenant, start=day, end=day + timedelta(days=1))
        assert summary == {"hours": 24, "days": 1, "failed_hours": 0}
        assert cassandra.hourly_rows(tenant, day.date()) == EXPECTED_HOURS
        month = cassandra.daily_rows(tenant, day.strftime("%Y-%m"))
        assert month[day.date()] == EXPECTED_DAY
        assert cassandra.sku_history(tenant, "MUG-1") == [(day.date(), 10, 2)]
        assert cassandra.sku_history(tenant, "POT-1") == [(day.date(), 11, 1)]

    assert cassandra.hourly_rows(other, day.date()) == {}
    rollup_analytics(other, start=day, end=day + timedelta(days=1))
    assert set(cassandra.hourly_rows(other, day.date())[10]) == {
        "views",
        "customers",
        "view_to_cart",
    }
    assert cassandra.hourly_rows(tenant, day.date()) == EXPECTED_HOURS


def test_missing_order_event_fails_only_its_hour_until_replayed(tenant: str) -> None:
    day = known_day(4)
    seed_known_day(tenant, day, skip={"pot"})

    state = rollup_analytics(tenant, start=day, end=day + timedelta(days=1), return_state=True)
    assert state.is_failed()
    with pytest.raises(ReconciliationFailed, match=r"1 hour\(s\).*11:00"):
        state.result()
    gate = artifacts_of(state.state_details.flow_run_id)[
        artifact_key("rollup-reconciliation", tenant)
    ]
    assert f"| {day:%Y-%m-%d} 11:00 | orders_placed | 0 | 1 |" in gate
    assert f"| {day:%Y-%m-%d} 11:00 | revenue:JPY | 0 | 3100 |" in gate
    hours = cassandra.hourly_rows(tenant, day.date())
    assert hours == {10: EXPECTED_HOURS[10]}
    assert day.date() not in cassandra.daily_rows(tenant, day.strftime("%Y-%m"))

    assert replay_analytics(tenant, start=day, end=day + timedelta(days=1)) == 4
    rollup_analytics(tenant, start=day, end=day + timedelta(days=1))
    assert cassandra.hourly_rows(tenant, day.date()) == EXPECTED_HOURS
    assert cassandra.daily_rows(tenant, day.strftime("%Y-%m"))[day.date()] == EXPECTED_DAY


def test_watermark_rerolls_hours_with_late_events(tenant: str) -> None:
    day = known_day(2)
    seed_known_day(tenant, day)

    first = rollup_analytics(tenant)
    assert first["hours"] == 2 and first["failed_hours"] == 0
    assert cassandra.hourly_rows(tenant, day.date()) == EXPECTED_HOURS
    assert rollup_analytics(tenant)["hours"] == 0

    late = [
        view(tenant, 100, day + timedelta(hours=10, minutes=50), "product_viewed", "c-9"),
        view(tenant, 101, day + timedelta(hours=14, minutes=1), "searched", "c-9", None),
    ]
    cassandra.write_storefront_events(late)
    assert rollup_analytics(tenant)["hours"] == 2
    hours = cassandra.hourly_rows(tenant, day.date())
    assert hours[10]["views"][0] == 4 and hours[10]["customers"][0] == 3
    assert hours[14] == {"searches": (1, 1), "customers": (1, 1)}
    assert hours[11] == EXPECTED_HOURS[11]
    day_rows = cassandra.daily_rows(tenant, day.strftime("%Y-%m"))[day.date()]
    assert day_rows["views"][0] == 6 and day_rows["searches"][0] == 1


def test_failed_hour_is_retried_by_the_next_watermark_run(tenant: str) -> None:
    day = known_day(5)
    orders = seed_known_day(tenant, day, skip={"pot"})
    state = rollup_analytics(tenant, return_state=True)
    assert state.is_failed()
    _, retry = cassandra.rollup_state(tenant)
    assert retry == {day + timedelta(hours=11)}
    replay_analytics(tenant, start=day + timedelta(hours=11), end=day + timedelta(hours=12))
    assert rollup_analytics(tenant)["failed_hours"] == 0
    assert cassandra.hourly_rows(tenant, day.date())[11] == EXPECTED_HOURS[11]
    assert cassandra.rollup_state(tenant)[1] == set()
    assert orders["pot"]


def test_bad_ranges_are_refused(tenant: str) -> None:
    day = known_day()
    with pytest.raises(ValueError, match="reversed"):
        rollup_analytics(tenant, start=day, end=day - timedelta(hours=1))
    with pytest.raises(ValueError, match="both start and end"):
        rollup_analytics(tenant, start=day)
