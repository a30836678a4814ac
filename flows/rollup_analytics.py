"""`rollup-analytics` and `replay-analytics`: Cassandra's analytics, rolled up and repaired.

`rollup-analytics` recomputes hourly rollups from the raw events and overwrites them (never
increments, never counters), so running an hour twice gives the same rows. Before an hour is
written, its order counts and revenue per currency must equal PostgreSQL's (the reconciliation
gate, GX); an hour that disagrees writes nothing, is named in an artifact with the metric and
both values, and fails the run after the other hours went through. Days are derived from their
hours. Without a range, a run re-rolls the hours that received events or orders since the
tenant's watermark (late events included) plus the hours that failed last time.

`replay-analytics` re-derives Cassandra's order events of a range from PostgreSQL: the repair
after data loss or a delivery that never arrived.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from domain.analytics import Mismatch, hour_of, hours_of
from domain.tenancy import TenantId
from flows.artifacts import artifact_key
from tasks.analytics import (
    DayRollup,
    dirty_hours,
    known_tenants,
    move_watermark,
    replay_order_events,
    roll_up_day,
)

PARTITION_SIZES = ("hour", "day")


class ReconciliationFailed(RuntimeError):
    """Some hours disagree with PostgreSQL; they were not written."""


def _mismatch_table(mismatches: list[Mismatch]) -> str:
    lines = ["| hour (UTC) | metric | Cassandra | PostgreSQL |", "|---|---|---|---|"]
    lines += [
        f"| {m.hour:%Y-%m-%d %H:00} | {m.metric} | {m.cassandra} | {m.postgres} |"
        for m in mismatches
    ]
    return "\n".join(lines)


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime] | None:
    if (start is None) != (end is None):
        raise ValueError("give both start and end, or neither (the watermark decides)")
    if start is None or end is None:
        return None
    start, end = (m.replace(tzinfo=UTC) if m.tzinfo is None else m for m in (start, end))
    if end <= start:
        raise ValueError(f"empty or reversed range: {start.isoformat()} .. {end.isoformat()}")
    return start, end


@flow(name="rollup-analytics", log_prints=True)
def rollup_analytics(
    tenant: TenantId | None = None, start: datetime | None = None, end: datetime | None = None
) -> dict[str, int]:
    """Roll up the hours in [start, end), or, without a range, the hours the watermark says
    changed. Without a tenant (the hourly schedule), every tenant that has analytics events,
    one after the other: a tenant that fails its gate does not hold up the others. Returns
    counts of hours and days written and of hours failed."""
    chosen = _range(start, end)
    if tenant is not None:
        return _roll_up_tenant(tenant, chosen)
    totals = {"hours": 0, "days": 0, "failed_hours": 0, "tenants": 0}
    failed: list[str] = []
    for each in known_tenants():
        try:
            summary = _roll_up_tenant(each, chosen)
        except ReconciliationFailed as error:
            failed.append(str(error))
            continue
        totals["tenants"] += 1
        for name in ("hours", "days", "failed_hours"):
            totals[name] += summary[name]
    if failed:
        raise ReconciliationFailed("; ".join(failed))
    return totals


def _roll_up_tenant(tenant: str, chosen: tuple[datetime, datetime] | None) -> dict[str, int]:
    started = datetime.now(UTC)
    watermark = None
    if chosen:
        hours = hours_of(*chosen)
    else:
        watermark, hours = dirty_hours(tenant)
    by_day: dict[date, list[datetime]] = defaultdict(list)
    for hour in hours:
        by_day[hour.date()].append(hour_of(hour))
    futures = [roll_up_day.submit(tenant, day, day_hours) for day, day_hours in by_day.items()]
    results: list[DayRollup] = [future.result() for future in futures]
    mismatches = [m for r in results for m in r.mismatches]
    failed_hours = sorted({m.hour for m in mismatches})
    if not chosen:
        move_watermark(tenant, started, failed_hours)
    summary = {
        "hours": sum(len(r.hours_written) for r in results),
        "days": sum(r.daily_written for r in results),
        "failed_hours": len(failed_hours),
    }
    create_table_artifact(
        key=artifact_key("rollup-analytics", tenant),
        table=[
            {
                "day": r.day.isoformat(),
                "hours written": len(r.hours_written),
                "hours failed": len(r.failed_hours),
                "daily written": r.daily_written,
            }
            for r in sorted(results, key=lambda r: r.day)
        ],
        description=f"rollup-analytics of {tenant}"
        + (f" since watermark {watermark:%Y-%m-%d %H:%M}" if watermark else ""),
    )
    if mismatches:
        create_markdown_artifact(
            key=artifact_key("rollup-reconciliation", tenant),
            markdown="# Rollup reconciliation failed\n\nThese hours of tenant "
            f"`{tenant}` disagree with PostgreSQL and were not written:\n\n"
            f"{_mismatch_table(mismatches)}\n\nA pending outbox delivery catches up with "
            "`sync-outbox`; lost events come back with `replay-analytics`.",
            description="Reconciliation gate of rollup-analytics",
        )
        first = mismatches[0]
        raise ReconciliationFailed(
            f"{len(failed_hours)} hour(s) of {tenant} disagree with PostgreSQL, first "
            f"{first.hour:%Y-%m-%d %H:00} {first.metric}: Cassandra {first.cassandra}, "
            f"PostgreSQL {first.postgres}; {summary['hours']} hour(s) written"
        )
    print(f"{tenant}: {summary['hours']} hours and {summary['days']} days rolled up")
    return summary


@flow(name="replay-analytics", log_prints=True)
def replay_analytics(tenant: TenantId, start: datetime, end: datetime) -> int:
    """Re-derive the order events of [start, end) in Cassandra from PostgreSQL."""
    chosen = _range(start, end)
    if chosen is None:
        raise ValueError("replay-analytics needs a range: start and end")
    replayed = replay_order_events(tenant, *chosen)
    print(f"{tenant}: {replayed} order events re-derived for {chosen[0]} .. {chosen[1]}")
    return replayed
