"""Benchmark analytics: event ingestion, 30 days of rollups, and backfills, flow vs raw.

    python -m bench.analytics [--events 1000000] [--days 30] [--backfill-days 30]

Needs the local stack (Prefect server and `polyflow serve` included) and PREFECT_API_URL
pointing at it. One run measures:

1. `ingest-events` on a synthetic JSONL file of `--events` events over `--days` days, in its
   own process (peak RSS is that process's), against a raw baseline: the same file parsed
   line by line and written with the same driver calls (Cassandra concurrent prepared
   statements, one Redis pipeline per chunk), no Prefect, no GX, no spool. Peak RSS is also
   measured on a file a tenth as long: flat means the ratio of the two stays near 1;
2. `rollup-analytics` over the `--days` days against a raw baseline doing the same reads,
   arithmetic and writes without Prefect and with the gate as a plain comparison;
3. `backfill` of `--backfill-days` daily rollup partitions at concurrency 1 and 4 (wall time).

Each measurement uses its own fresh tenant, deleted from Cassandra at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

CHUNK = 20_000


def generate(path: Path, tenant: str, events: int, days: int) -> float:
    from domain.traffic import synthetic_events
    from expectations.events import write_events_file

    end = datetime.now(UTC) - timedelta(minutes=1)
    started = time.perf_counter()
    write_events_file(path, synthetic_events(tenant, end - timedelta(days=days), end, events))
    return time.perf_counter() - started


def child_ingest(path: Path, tenant: str, raw: bool) -> tuple[float, int]:
    """Run one ingestion in a fresh process: (seconds, peak RSS in MB)."""
    mode = "raw" if raw else "flow"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.analytics", "one-ingest", str(path), tenant, mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read() if process.stdout else ""
    if status != 0:
        raise RuntimeError(f"{mode} ingestion of {path} failed: {output}")
    seconds = float(output.strip().splitlines()[-1])
    return seconds, usage.ru_maxrss // 1024


def one_ingest(path: Path, tenant: str, mode: str) -> None:
    started = time.perf_counter()
    if mode == "flow":
        from flows.ingest_events import ingest_events

        summary = ingest_events(str(path), tenant, chunk_size=CHUNK)
        assert summary.rejected == 0, summary
    else:
        raw_ingest(path, tenant)
    print(time.perf_counter() - started)


def raw_ingest(path: Path, tenant: str) -> None:
    from domain.analytics import StorefrontEvent
    from tasks.analytics import store_events

    batch: list[StorefrontEvent] = []
    with path.open() as lines:
        for line in lines:
            e = json.loads(line)
            batch.append(
                StorefrontEvent(**{**e, "occurred_at": datetime.fromisoformat(e["occurred_at"])})
            )
            if len(batch) == CHUNK:
                store_events(tenant, batch)
                batch = []
    if batch:
        store_events(tenant, batch)


def raw_rollup(tenant: str, start: datetime, end: datetime) -> int:
    from domain.analytics import daily_rollup, hourly_rollups, hours_of, reconciliation_rows
    from stores import cassandra, postgres

    hours_written = 0
    day = start
    while day < end:
        orders, storefront = cassandra.day_events(tenant, day.date())
        rollups = hourly_rollups(orders, storefront)
        truth = postgres.order_truth(tenant, day, day + timedelta(days=1))
        for hour in hours_of(day, day + timedelta(days=1)):
            rows = reconciliation_rows(hour, rollups.get(hour), truth.get(hour, {}))
            assert all(r["cassandra"] == r["postgres"] for r in rows)
            rollup = rollups.get(hour)
            cassandra.write_hourly(
                tenant, hour, rollup.rows() if rollup else {}, rollup.customers if rollup else set()
            )
            hours_written += 1
        stored = cassandra.hourly_rows(tenant, day.date())
        daily = daily_rollup(stored.values(), cassandra.day_customers(tenant, day.date()))
        cassandra.write_daily(tenant, day.date(), daily.rows())
        day += timedelta(days=1)
    return hours_written


def drop_tenant(tenant: str, days: int) -> None:
    from stores import cassandra

    cql = cassandra._keyspace_session()
    today = datetime.now(UTC).date()
    users = [f"c-{i:04d}" for i in range(1, 201)]
    for back in range(days + 2):
        day = today - timedelta(days=back)
        cql.execute("DELETE FROM events_by_day WHERE tenant = %s AND day = %s", (tenant, day))
        cql.execute("DELETE FROM rollups_hourly WHERE tenant = %s AND day = %s", (tenant, day))
        cql.execute("DELETE FROM rollup_customers WHERE tenant = %s AND day = %s", (tenant, day))
        for user in users:
            cql.execute_async(
                "DELETE FROM user_analytics WHERE tenant = %s AND user_id = %s AND day = %s",
                (tenant, user, day),
            ).result()
    cql.execute("DELETE FROM event_arrivals WHERE tenant = %s", (tenant,))


def backfill_wall(tenant: str, days: int, concurrency: int) -> float:
    from prefect.deployments import run_deployment

    from flows.backfill import BACKFILL_DEPLOYMENT

    today = datetime.now(UTC).date()
    started = time.perf_counter()
    run = run_deployment(
        BACKFILL_DEPLOYMENT,
        parameters={
            "flow_name": "rollup-analytics",
            "tenant": tenant,
            "start": (today - timedelta(days=days)).isoformat(),
            "end": (today - timedelta(days=1)).isoformat(),
            "max_concurrent": concurrency,
            "reprocess": "all",
        },
        timeout=None,
    )
    seconds = time.perf_counter() - started
    if not (run.state and run.state.is_completed()):
        raise RuntimeError(f"backfill at concurrency {concurrency}: {run.state}")
    return seconds


def main(
    events: Annotated[int, typer.Option(min=1000, help="Events to ingest.")] = 1_000_000,
    days: Annotated[int, typer.Option(min=1, max=60, help="Days the events span.")] = 30,
    backfill_days: Annotated[int, typer.Option(min=0, help="Daily partitions; 0 skips.")] = 30,
) -> None:
    """Run the benchmark; prints figures and `ratio NAME: X` lines."""
    run = uuid.uuid4().hex[:6]
    tenants = {name: f"bench-analytics-{name}-{run}" for name in ("flow", "raw", "small")}
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as folder:
        files = {name: Path(folder) / f"{name}.jsonl" for name in tenants}
        for name, tenant in tenants.items():
            count = events // 10 if name == "small" else events
            seconds = generate(files[name], tenant, count, days)
            print(f"generated {count:,} events for {name} in {seconds:.1f} s")
        try:
            small_s, small_rss = child_ingest(files["small"], tenants["small"], raw=False)
            flow_s, flow_rss = child_ingest(files["flow"], tenants["flow"], raw=False)
            raw_s, raw_rss = child_ingest(files["raw"], tenants["raw"], raw=True)
            print(
                f"ingest {events // 10:,} events (flow): {small_s:.1f} s, "
                f"{events // 10 / small_s:,.0f}/s, peak RSS {small_rss} MB"
            )
            print(
                f"ingest {events:,} events: flow {flow_s:.1f} s ({events / flow_s:,.0f}/s, "
                f"peak RSS {flow_rss} MB), raw {raw_s:.1f} s ({events / raw_s:,.0f}/s, "
                f"peak RSS {raw_rss} MB)"
            )
            print(f"ratio ingest flow/raw (throughput): {raw_s / flow_s:.2f}")
            print(f"ratio ingest peak RSS {events:,}/{events // 10:,}: {flow_rss / small_rss:.2f}")

            from flows.rollup_analytics import rollup_analytics

            today = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
            start, end = today - timedelta(days=days), today
            began = time.perf_counter()
            summary = rollup_analytics(tenants["flow"], start=start, end=end)
            flow_rollup = time.perf_counter() - began
            began = time.perf_counter()
            hours = raw_rollup(tenants["raw"], start, end)
            raw_rollup_s = time.perf_counter() - began
            print(
                f"rollup {days} days ({summary['hours']} hours): flow {flow_rollup:.1f} s, "
                f"raw {raw_rollup_s:.1f} s ({hours} hours)"
            )
            print(f"ratio rollup flow/raw (throughput): {raw_rollup_s / flow_rollup:.2f}")

            if backfill_days:
                walls = {c: backfill_wall(tenants["flow"], backfill_days, c) for c in (1, 4)}
                print(
                    f"backfill {backfill_days} daily partitions: concurrency 1 {walls[1]:.1f} s, "
                    f"concurrency 4 {walls[4]:.1f} s"
                )
                print(f"ratio backfill speed-up 4/1: {walls[1] / walls[4]:.2f}")
        finally:
            for tenant in tenants.values():
                drop_tenant(tenant, days)


if __name__ == "__main__":
    if sys.argv[1:2] == ["one-ingest"]:
        one_ingest(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        typer.run(main)
