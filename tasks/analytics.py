"""Analytics tasks: storefront event files into Cassandra and Redis, hourly/daily rollups gated
by reconciliation with PostgreSQL, and the re-derivation of order events from PostgreSQL.

Tasks take chunk files or a day, never thousands of records as arguments; every store-facing
task has transient-only retries (`STORE_TASK`). The rules (what an hour adds up to) are in
`domain.analytics`; the gate is a GX suite (`expectations.rollups`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import task

from domain.analytics import (
    COUNTER_TTL,
    RETENTION,
    SESSION_TTL,
    Mismatch,
    StorefrontEvent,
    daily_rollup,
    day_start,
    hour_of,
    hourly_rollups,
    reconciliation_rows,
)
from expectations.events import read_events
from expectations.rollups import reconcile
from stores import cassandra, mongodb, postgres, redis
from stores.postgres.backfills import COMPLETED, FAILED, RUNNING
from tasks.outbox import project_to_cassandra
from tasks.retry import STORE_TASK

FIRST_REJECTS = 20
REPLAY_BATCH = 2000


@dataclass
class ValidatedEvents:
    source: str
    rows_read: int = 0
    rejected: int = 0
    first_rejects: list[dict[str, Any]] = field(default_factory=list)
    chunk_files: list[str] = field(default_factory=list)

    @property
    def reject_share(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0


@task(name="validate-event-file", **STORE_TASK)
def validate_event_file(
    path: str, tenant: str, chunk_size: int, file_format: str | None, spool: str
) -> ValidatedEvents:
    """Stream the file once: quarantine bad rows (MongoDB `import_rejects`), spool good ones."""
    result = ValidatedEvents(source=str(path))
    for number, chunk in enumerate(read_events(path, tenant, chunk_size, file_format)):
        result.rows_read += chunk.rows_read
        result.rejected += len(chunk.rejects)
        if chunk.rejects:
            mongodb.quarantine([r.model_dump(mode="json") for r in chunk.rejects])
        room = FIRST_REJECTS - len(result.first_rejects)
        result.first_rejects += [
            {"line": r.line, "fields": ", ".join(r.fields), "reason": r.reason}
            for r in chunk.rejects[:room]
        ]
        if chunk.events:
            chunk_file = Path(spool) / f"events-{number:06d}.json"
            chunk_file.write_text(json.dumps([_spooled(e) for e in chunk.events]))
            result.chunk_files.append(str(chunk_file))
    return result


def _spooled(event: StorefrontEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "tenant": event.tenant,
        "occurred_at": event.occurred_at.isoformat(),
        "event_type": event.event_type,
        "user_id": event.user_id,
        "session_id": event.session_id,
        "sku": event.sku,
        "properties": event.properties,
    }


def load_chunk(chunk_file: str) -> list[StorefrontEvent]:
    return [
        StorefrontEvent(**{**e, "occurred_at": datetime.fromisoformat(e["occurred_at"])})
        for e in json.loads(Path(chunk_file).read_text())
    ]


def store_events(tenant: str, events: list[StorefrontEvent]) -> int:
    """Cassandra (both tables, idempotent on the event id), then Redis live counters and
    sessions (counted once per event id). Returns the events Redis counted for the first time."""
    cassandra.write_storefront_events(events)
    return redis.track_events(
        tenant,
        events,
        now=time.time(),
        counter_ttl=COUNTER_TTL.total_seconds(),
        session_ttl=SESSION_TTL.total_seconds(),
    )


@task(name="store-event-chunk", **STORE_TASK)
def store_event_chunk(tenant: str, chunk_file: str) -> tuple[int, int]:
    """One spooled chunk into Cassandra and Redis: (events written, newly counted)."""
    events = load_chunk(chunk_file)
    return len(events), store_events(tenant, events)


# -- rollups -------------------------------------------------------------------------------


@dataclass
class DayRollup:
    day: date
    hours_written: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    daily_written: bool = False

    @property
    def failed_hours(self) -> list[datetime]:
        return sorted({m.hour for m in self.mismatches})


@task(name="roll-up-day", task_run_name="roll-up-{tenant}-{day}", **STORE_TASK)
def roll_up_day(tenant: str, day: date, hours: list[datetime]) -> DayRollup:
    """Recompute the given hours of one day from Cassandra's raw events, gate each against
    PostgreSQL, overwrite the hours that reconcile, then derive the day from its hours (only
    when every hour asked for reconciled)."""
    start = day_start(day)
    orders, storefront = cassandra.day_events(tenant, day)
    rollups = hourly_rollups(orders, storefront)
    truth = postgres.order_truth(tenant, start, start + timedelta(days=1))
    rows = [
        row
        for hour in hours
        for row in reconciliation_rows(hour, rollups.get(hour), truth.get(hour, {}))
    ]
    result = DayRollup(day=day, mismatches=reconcile(rows))
    failed = set(result.failed_hours)
    for hour in hours:
        if hour in failed:
            continue
        rollup = rollups.get(hour)
        cassandra.write_hourly(
            tenant, hour, rollup.rows() if rollup else {}, rollup.customers if rollup else set()
        )
        result.hours_written.append(hour.isoformat())
    if not failed:
        stored = cassandra.hourly_rows(tenant, day)
        daily = daily_rollup(stored.values(), cassandra.day_customers(tenant, day))
        cassandra.write_daily(tenant, day, daily.rows() if stored else {})
        result.daily_written = True
    return result


@task(name="find-dirty-hours", **STORE_TASK)
def dirty_hours(tenant: str) -> tuple[datetime | None, list[datetime]]:
    """The watermark, and the hours to re-roll: those that received events (Cassandra) or
    orders (PostgreSQL) since it, plus those that failed their gate last time."""
    watermark, retry = cassandra.rollup_state(tenant)
    since = watermark or datetime.now(UTC) - RETENTION
    hours = set(cassandra.arrived_since(tenant, watermark)) | retry
    hours |= {hour_of(at) for at in postgres.order_times_since(tenant, since)}
    return watermark, sorted(hours)


@task(name="list-analytics-tenants", **STORE_TASK)
def known_tenants() -> list[str]:
    return cassandra.known_tenants()


@task(name="move-rollup-watermark", **STORE_TASK)
def move_watermark(tenant: str, watermark: datetime, retry: list[datetime]) -> None:
    cassandra.set_rollup_state(tenant, watermark, set(retry))


# -- replay --------------------------------------------------------------------------------


@task(name="replay-order-events", **STORE_TASK)
def replay_order_events(tenant: str, start: datetime, end: datetime) -> int:
    """Re-derive Cassandra's order events in [start, end) from PostgreSQL's outbox: the same
    events under the same ids (`outbox-<id>`), so replaying changes nothing that was there."""
    messages = postgres.order_events_between(tenant, start, end)
    for first in range(0, len(messages), REPLAY_BATCH):
        project_to_cassandra(messages[first : first + REPLAY_BATCH])
    return len(messages)


# -- backfill partitions -------------------------------------------------------------------

PARTITION_LEASE_SECONDS = 60
"""A partition's concurrency slot is a lease renewed while it runs: if the backfill dies, the
slot frees itself this long after (Prefect's minimum), so a resumed backfill is not locked out."""


@dataclass(frozen=True)
class PartitionOutcome:
    partition: str
    status: str
    flow_run_id: str | None
    reason: str | None = None


@task(
    name="run-partition",
    task_run_name="{flow_name}-{partition}",
    cache_policy=STORE_TASK["cache_policy"],
)
def run_partition(
    flow_name: str,
    deployment: str,
    tenant: str,
    partition: str,
    parameters: dict[str, Any],
    attempt: int,
    limit_name: str,
    backfill_run_id: str | None,
) -> PartitionOutcome:
    """Run one partition as a child flow run of `deployment`, holding one slot of the
    backfill's global concurrency limit while it runs. The flow-run idempotency key is
    (flow, tenant, partition, attempt): a second backfill starting the same partition attaches
    to the same run instead of starting another. Status goes to PostgreSQL as it changes."""
    from prefect.concurrency.sync import concurrency
    from prefect.deployments import run_deployment

    for _ in range(2):
        key = f"backfill:{flow_name}:{tenant}:{partition}:{attempt}"
        with concurrency(limit_name, occupy=1, lease_duration=PARTITION_LEASE_SECONDS, strict=True):
            postgres.record_partition(
                flow_name, tenant, partition, RUNNING, backfill_run_id=backfill_run_id
            )
            run = run_deployment(
                deployment,
                parameters=parameters,
                idempotency_key=key,
                flow_run_name=f"{tenant}-{partition}",
                tags=["backfill", f"backfill:{flow_name}:{tenant}"],
                timeout=None,
                poll_interval=1,
            )
        state = run.state
        flow_run_id = str(run.id)
        if state is not None and state.is_completed():
            postgres.record_partition(
                flow_name, tenant, partition, COMPLETED, flow_run_id=flow_run_id
            )
            return PartitionOutcome(partition, COMPLETED, flow_run_id)
        reason = f"{state.name if state else 'no state'}: {state.message if state else ''}"
        postgres.record_partition(
            flow_name, tenant, partition, FAILED, flow_run_id=flow_run_id, reason=reason
        )
        if not (state and (state.is_cancelled() or state.is_crashed())):
            return PartitionOutcome(partition, FAILED, flow_run_id, reason)
        attempt += 1  # a run cancelled or crashed under an earlier backfill: run it anew
    return PartitionOutcome(partition, FAILED, flow_run_id, reason)
