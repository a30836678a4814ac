"""Cassandra: analytics events as a time series per tenant and day, and their rollups.

Partitions are (tenant, day) so a tenant's day is one partition and tenants never share one.
Writes are prepared statements run concurrently (`execute_concurrent_with_args`): the driver's
bulk path. Cassandra writes are upserts by primary key, so replaying an event changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from domain.analytics import (
    STOREFRONT_TYPES,
    UNITS,
    OrderFact,
    StorefrontEvent,
    hour_of,
    lines_of,
)
from domain.outbox import ORDER_EVENTS as ORDER_FACT_TYPES
from domain.settings import Settings, public_address, settings
from domain.tenancy import check_tenant
from stores import clients
from stores.health import StoreHealth, measure

STORE = "cassandra"
PROTOCOL_VERSION = 5
"""Cassandra 5 speaks v5; naming it spares the driver a downgrade dance and its warnings."""

TABLES = (
    """CREATE TABLE IF NOT EXISTS events_by_day (
        tenant text, day date, event_time timestamp, event_id text,
        event_type text, aggregate_id text, amount decimal, currency text, payload text,
        PRIMARY KEY ((tenant, day), event_time, event_id)
    ) WITH CLUSTERING ORDER BY (event_time ASC, event_id ASC)""",
    """CREATE TABLE IF NOT EXISTS rollups_hourly (
        tenant text, day date, hour int, metric text, value decimal, events bigint,
        PRIMARY KEY ((tenant, day), hour, metric)
    )""",
    """CREATE TABLE IF NOT EXISTS rollups_daily (
        tenant text, month text, day date, metric text, value decimal, events bigint,
        PRIMARY KEY ((tenant, month), day, metric)
    )""",
)


@dataclass(frozen=True)
class AnalyticsEvent:
    tenant: str
    event_time: datetime
    event_id: str
    event_type: str
    aggregate_id: str
    amount: Decimal | None = None
    currency: str | None = None
    payload: str = "{}"

    @property
    def day(self) -> date:
        return self.event_time.date()


@dataclass(frozen=True)
class ConnectionConfig:
    hosts: list[tuple[str, int]]
    """Every contact point with its port; the driver discovers the rest of the ring from them."""
    keyspace: str
    replication_factor: int
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # the password
        return f"ConnectionConfig(hosts={self.hosts!r}, keyspace={self.keyspace!r})"


def connection_config(config: Settings | None = None) -> ConnectionConfig:
    """`cassandra://[user:pass@]host[:port][,host[:port]...]/keyspace[?replication_factor=N]`,
    as `domain.settings` parsed and checked it (the keyspace against IDENTIFIER)."""
    url = (config or settings()).cassandra_url
    username, password = url.credentials or (None, None)
    return ConnectionConfig(
        hosts=url.hosts,
        keyspace=url.keyspace,
        replication_factor=url.replication_factor,
        username=username,
        password=password,
    )


def _connect(config: Settings) -> Session:
    cassandra = connection_config(config)
    auth = (
        PlainTextAuthProvider(cassandra.username, cassandra.password or "")
        if cassandra.username
        else None
    )
    timeout = config.connect_timeout
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        request_timeout=timeout * 4,
    )
    cluster = Cluster(
        contact_points=cassandra.hosts,
        auth_provider=auth,
        connect_timeout=timeout,
        control_connection_timeout=timeout,
        protocol_version=PROTOCOL_VERSION,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        return cluster.connect()
    except BaseException:
        cluster.shutdown()
        raise


def _shutdown(cql: Session) -> None:
    cql.cluster.shutdown()


_prepared_on: Session | None = None


def session() -> Session:
    """The process-wide session for the configured URL (see `stores.clients`); the driver pools
    connections per host. Statements are prepared per cluster, so when the session changes
    (another URL under an override, a reconnect after `close`) the cached ones are dropped."""
    global _prepared_on
    cql = clients.shared(STORE, _connect, _shutdown)
    if cql is not _prepared_on:
        _insert_event.cache_clear()
        _clear_analytics_statements()
        _prepared_on = cql
    return cql


def close() -> None:
    clients.close(STORE)


def bootstrap() -> None:
    """Create the keyspace and tables if missing."""
    config = connection_config()
    # Identifiers cannot be bound in CQL; domain.settings checked the keyspace name (IDENTIFIER).
    create_keyspace = (
        f"CREATE KEYSPACE IF NOT EXISTS {config.keyspace} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {config.replication_factor}}}"
    )
    cql = session()
    cql.execute(create_keyspace)
    cql.set_keyspace(config.keyspace)
    for table in (*TABLES, *ANALYTICS_TABLES):
        cql.execute(table)


def _keyspace_session() -> Session:
    cql = session()
    if cql.keyspace != connection_config().keyspace:
        cql.set_keyspace(connection_config().keyspace)
    return cql


def health() -> StoreHealth:
    def check() -> tuple[str, str]:
        cql = session()
        version = cql.execute("SELECT release_version FROM system.local").one().release_version
        estimates = cql.execute(
            "SELECT partitions_count FROM system.size_estimates WHERE keyspace_name = %s",
            (connection_config().keyspace,),
        )
        return version, f"~{sum(row.partitions_count for row in estimates)} partitions"

    return measure(STORE, public_address(settings().cassandra_url), check)


@cache
def _insert_event() -> PreparedStatement:
    return _keyspace_session().prepare(
        "INSERT INTO events_by_day (tenant, day, event_time, event_id, event_type, aggregate_id,"
        " amount, currency, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )


def write_events(events: Sequence[AnalyticsEvent], concurrency: int = 64) -> None:
    """Write events with one prepared statement, many in flight at once; raise on any failure."""
    rows = [
        (
            check_tenant(e.tenant),
            e.day,
            e.event_time,
            e.event_id,
            e.event_type,
            e.aggregate_id,
            e.amount,
            e.currency,
            e.payload,
        )
        for e in events
    ]
    execute_concurrent_with_args(
        _keyspace_session(),
        _insert_event(),
        rows,
        concurrency=concurrency,
        raise_on_first_error=True,
    )
    mark_arrivals((row[0], row[2]) for row in rows)


def events_on(tenant: str, day: date) -> list[AnalyticsEvent]:
    """All events of one tenant on one day, in time order."""
    rows = _keyspace_session().execute(
        "SELECT tenant, event_time, event_id, event_type, aggregate_id, amount, currency, payload"
        " FROM events_by_day WHERE tenant = %s AND day = %s",
        (check_tenant(tenant), day),
    )
    return [AnalyticsEvent(**row._asdict()) for row in rows]


# -- storefront events and rollups (analytics) ---------------------------------------------
#
# Tables, each keyed for the read a dashboard or a flow makes:
#   events_by_day      ((tenant, day), event_time, event_id)  a tenant's day of raw events
#   user_analytics     ((tenant, user_id, day), event_time, event_id)  one shopper's day
#   event_arrivals     ((tenant), hour) -> arrived_at  when an hour last received events: what
#                      the rollup's watermark is compared with, so late events are re-rolled
#   rollup_state       (tenant) -> watermark, retry  the rollup's watermark and failed hours
#   rollups_hourly     ((tenant, day), hour, metric)  a day's hours, one read
#   rollups_daily      ((tenant, month), day, metric)  a month's days, one read
#   rollup_customers   ((tenant, day), hour, customer_id)  distinct shoppers of a day's hours
#   rollups_by_sku     ((tenant, sku), day, hour) -> units  a sku's history
# Rollups are recomputed and overwritten per hour (delete the hour's rows, insert the new
# ones; the driver's client timestamps are monotonic, so the inserts win): never counters.

ANALYTICS_TABLES = (
    "ALTER TABLE events_by_day ADD IF NOT EXISTS user_id text",
    "ALTER TABLE events_by_day ADD IF NOT EXISTS session_id text",
    "ALTER TABLE events_by_day ADD IF NOT EXISTS sku text",
    """CREATE TABLE IF NOT EXISTS user_analytics (
        tenant text, user_id text, day date, event_time timestamp, event_id text,
        event_type text, session_id text, sku text, payload text,
        PRIMARY KEY ((tenant, user_id, day), event_time, event_id)
    ) WITH CLUSTERING ORDER BY (event_time ASC, event_id ASC)""",
    """CREATE TABLE IF NOT EXISTS event_arrivals (
        tenant text, hour timestamp, arrived_at timestamp,
        PRIMARY KEY ((tenant), hour)
    )""",
    """CREATE TABLE IF NOT EXISTS rollup_state (
        tenant text PRIMARY KEY, watermark timestamp, retry set<timestamp>
    )""",
    """CREATE TABLE IF NOT EXISTS rollup_customers (
        tenant text, day date, hour int, customer_id text,
        PRIMARY KEY ((tenant, day), hour, customer_id)
    )""",
    """CREATE TABLE IF NOT EXISTS rollups_by_sku (
        tenant text, sku text, day date, hour int, units bigint,
        PRIMARY KEY ((tenant, sku), day, hour)
    )""",
)

_ANALYTICS_CQL = {
    "storefront": "INSERT INTO events_by_day (tenant, day, event_time, event_id, event_type,"
    " aggregate_id, user_id, session_id, sku, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "by_user": "INSERT INTO user_analytics (tenant, user_id, day, event_time, event_id,"
    " event_type, session_id, sku, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "arrival": "INSERT INTO event_arrivals (tenant, hour, arrived_at) VALUES (?, ?, ?)",
    "hourly": "INSERT INTO rollups_hourly (tenant, day, hour, metric, value, events)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "hourly_delete": "DELETE FROM rollups_hourly WHERE tenant = ? AND day = ? AND hour = ?",
    "customers": "INSERT INTO rollup_customers (tenant, day, hour, customer_id)"
    " VALUES (?, ?, ?, ?)",
    "customers_delete": "DELETE FROM rollup_customers WHERE tenant = ? AND day = ? AND hour = ?",
    "sku": "INSERT INTO rollups_by_sku (tenant, sku, day, hour, units) VALUES (?, ?, ?, ?, ?)",
    "sku_delete": "DELETE FROM rollups_by_sku WHERE tenant = ? AND sku = ? AND day = ?"
    " AND hour = ?",
    "daily": "INSERT INTO rollups_daily (tenant, month, day, metric, value, events)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "daily_delete": "DELETE FROM rollups_daily WHERE tenant = ? AND month = ? AND day = ?",
}


@cache
def _statement(name: str) -> PreparedStatement:
    return _keyspace_session().prepare(_ANALYTICS_CQL[name])


def _clear_analytics_statements() -> None:
    _statement.cache_clear()


def _run(name: str, rows: Sequence[tuple[Any, ...]], concurrency: int = 64) -> None:
    if rows:
        execute_concurrent_with_args(
            _keyspace_session(),
            _statement(name),
            rows,
            concurrency=concurrency,
            raise_on_first_error=True,
        )


BATCH_ROWS = 50
"""Rows of one partition sent as one unlogged batch: a single mutation for Cassandra, and one
request instead of fifty for the driver, whose per-request cost dominates on small rows
(50 rows of ~200 bytes stay under Cassandra's batch size warning)."""


def _run_batched(
    name: str, rows: Sequence[tuple[Any, ...]], key_columns: int, concurrency: int = 64
) -> None:
    """Like `_run`, but rows of the same partition (their first `key_columns` values) go in
    unlogged single-partition batches of at most `BATCH_ROWS`."""
    statement = _statement(name)
    by_partition: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        by_partition.setdefault(row[:key_columns], []).append(row)
    batches = []
    for partition_rows in by_partition.values():
        for first in range(0, len(partition_rows), BATCH_ROWS):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for row in partition_rows[first : first + BATCH_ROWS]:
                batch.add(statement, row)
            batches.append((batch, ()))
    if batches:
        execute_concurrent(
            _keyspace_session(), batches, concurrency=concurrency, raise_on_first_error=True
        )


def _utc(moment: datetime) -> datetime:
    """Cassandra hands timestamps back naive, in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def mark_arrivals(events: Iterable[tuple[str, datetime]]) -> None:
    """Record that these (tenant, event time) hours received events now."""
    now = datetime.now(UTC)
    hours = {(tenant, hour_of(moment)) for tenant, moment in events}
    _run("arrival", [(tenant, hour, now) for tenant, hour in sorted(hours)])


def arrived_since(tenant: str, since: datetime | None) -> list[datetime]:
    """The hours of a tenant that received events at or after `since` (all when None)."""
    rows = _keyspace_session().execute(
        "SELECT hour, arrived_at FROM event_arrivals WHERE tenant = %s", (check_tenant(tenant),)
    )
    return [_utc(row.hour) for row in rows if since is None or _utc(row.arrived_at) >= since]


def write_storefront_events(events: Sequence[StorefrontEvent], concurrency: int = 64) -> None:
    """Storefront events into `events_by_day` and `user_analytics`, keyed by event id."""
    by_day, by_user = [], []
    for e in events:
        tenant = check_tenant(e.tenant)
        moment = _utc(e.occurred_at)
        payload = json.dumps(e.properties, sort_keys=True, default=str)
        by_day.append(
            (
                tenant,
                moment.date(),
                moment,
                e.event_id,
                e.event_type,
                e.session_id,
                e.user_id,
                e.session_id,
                e.sku,
                payload,
            )
        )
        by_user.append(
            (
                tenant,
                e.user_id,
                moment.date(),
                moment,
                e.event_id,
                e.event_type,
                e.session_id,
                e.sku,
                payload,
            )
        )
    _run_batched("storefront", by_day, 2, concurrency)
    _run_batched("by_user", by_user, 3, concurrency)
    mark_arrivals((e.tenant, e.occurred_at) for e in events)


def day_events(
    tenant: str, day: date, start: datetime | None = None, end: datetime | None = None
) -> tuple[list[OrderFact], list[StorefrontEvent]]:
    """A tenant's order facts and storefront events of one day (optionally [start, end))."""
    cql = (
        "SELECT event_time, event_id, event_type, aggregate_id, amount, currency, payload,"
        " user_id, session_id, sku FROM events_by_day WHERE tenant = %s AND day = %s"
    )
    args: tuple[Any, ...] = (check_tenant(tenant), day)
    if start is not None and end is not None:
        cql += " AND event_time >= %s AND event_time < %s"
        args += (start, end)
    orders: list[OrderFact] = []
    storefront: list[StorefrontEvent] = []
    for row in _keyspace_session().execute(cql, args):
        if row.event_type in ORDER_FACT_TYPES:
            orders.append(
                OrderFact(
                    event_type=row.event_type,
                    order_id=row.aggregate_id,
                    occurred_at=_utc(row.event_time),
                    currency=row.currency,
                    amount=row.amount,
                    lines=lines_of(row.payload),
                )
            )
        elif row.event_type in STOREFRONT_TYPES:
            storefront.append(
                StorefrontEvent(
                    event_id=row.event_id,
                    tenant=tenant,
                    occurred_at=_utc(row.event_time),
                    event_type=row.event_type,
                    user_id=row.user_id or "",
                    session_id=row.session_id or "",
                    sku=row.sku,
                )
            )
    return orders, storefront


def user_events(tenant: str, user_id: str, day: date) -> list[tuple[datetime, str, str]]:
    """(time, event id, type) of one shopper's day, in time order."""
    rows = _keyspace_session().execute(
        "SELECT event_time, event_id, event_type FROM user_analytics"
        " WHERE tenant = %s AND user_id = %s AND day = %s",
        (check_tenant(tenant), user_id, day),
    )
    return [(_utc(r.event_time), r.event_id, r.event_type) for r in rows]


MetricRows = dict[str, tuple[Decimal, int]]


def hourly_rows(tenant: str, day: date) -> dict[int, MetricRows]:
    """A day's hourly rollups: hour (0-23) -> metric -> (value, events)."""
    rows = _keyspace_session().execute(
        "SELECT hour, metric, value, events FROM rollups_hourly WHERE tenant = %s AND day = %s",
        (check_tenant(tenant), day),
    )
    found: dict[int, MetricRows] = {}
    for row in rows:
        found.setdefault(row.hour, {})[row.metric] = (row.value, row.events)
    return found


def day_customers(tenant: str, day: date) -> set[str]:
    rows = _keyspace_session().execute(
        "SELECT customer_id FROM rollup_customers WHERE tenant = %s AND day = %s",
        (check_tenant(tenant), day),
    )
    return {row.customer_id for row in rows}


def write_hourly(tenant: str, hour: datetime, rows: MetricRows, customers: set[str]) -> None:
    """Overwrite one hour's rollup: its metric rows, its sku history rows, its customers."""
    tenant = check_tenant(tenant)
    hour = _utc(hour)
    day, h = hour.date(), hour.hour
    previous = hourly_rows(tenant, day).get(h, {})
    gone = [m for m in previous if m.startswith(UNITS) and m not in rows]
    _run("sku_delete", [(tenant, m[len(UNITS) :], day, h) for m in gone])
    _run("hourly_delete", [(tenant, day, h)])
    _run("customers_delete", [(tenant, day, h)])
    _run("hourly", [(tenant, day, h, m, value, events) for m, (value, events) in rows.items()])
    _run("customers", [(tenant, day, h, c) for c in sorted(customers)])
    _run(
        "sku",
        [
            (tenant, m[len(UNITS) :], day, h, int(value))
            for m, (value, _) in rows.items()
            if m.startswith(UNITS)
        ],
    )


def write_daily(tenant: str, day: date, rows: MetricRows) -> None:
    """Overwrite one day's rollup rows."""
    tenant = check_tenant(tenant)
    month = day.strftime("%Y-%m")
    _run("daily_delete", [(tenant, month, day)])
    _run("daily", [(tenant, month, day, m, value, events) for m, (value, events) in rows.items()])


def daily_rows(tenant: str, month: str) -> dict[date, MetricRows]:
    """A month's (`2026-12`) daily rollups: day -> metric -> (value, events)."""
    rows = _keyspace_session().execute(
        "SELECT day, metric, value, events FROM rollups_daily WHERE tenant = %s AND month = %s",
        (check_tenant(tenant), month),
    )
    found: dict[date, MetricRows] = {}
    for row in rows:
        found.setdefault(row.day.date(), {})[row.metric] = (row.value, row.events)
    return found


def sku_history(tenant: str, sku: str) -> list[tuple[date, int, int]]:
    """(day, hour, units) of one sku, oldest first."""
    rows = _keyspace_session().execute(
        "SELECT day, hour, units FROM rollups_by_sku WHERE tenant = %s AND sku = %s",
        (check_tenant(tenant), sku),
    )
    return [(row.day.date(), row.hour, row.units) for row in rows]


def rollup_state(tenant: str) -> tuple[datetime | None, set[datetime]]:
    """The tenant's rollup watermark and the hours to retry."""
    row = (
        _keyspace_session()
        .execute(
            "SELECT watermark, retry FROM rollup_state WHERE tenant = %s", (check_tenant(tenant),)
        )
        .one()
    )
    if row is None:
        return None, set()
    watermark = _utc(row.watermark) if row.watermark else None
    return watermark, {_utc(h) for h in row.retry or ()}


def set_rollup_state(tenant: str, watermark: datetime, retry: set[datetime]) -> None:
    _keyspace_session().execute(
        "INSERT INTO rollup_state (tenant, watermark, retry) VALUES (%s, %s, %s)",
        (check_tenant(tenant), watermark, set(retry)),
    )


def delete_day(tenant: str, day: date) -> None:
    """Drop a tenant's raw events of one day (a repair test's data loss, or a re-derive)."""
    _keyspace_session().execute(
        "DELETE FROM events_by_day WHERE tenant = %s AND day = %s", (check_tenant(tenant), day)
    )


def delete_event(tenant: str, moment: datetime, event_id: str) -> None:
    moment = _utc(moment)
    _keyspace_session().execute(
        "DELETE FROM events_by_day WHERE tenant = %s AND day = %s AND event_time = %s"
        " AND event_id = %s",
        (check_tenant(tenant), moment.date(), moment, event_id),
    )


def known_tenants() -> list[str]:
    """Every tenant that ever received analytics events (a scan of partition keys only)."""
    rows = _keyspace_session().execute("SELECT DISTINCT tenant FROM event_arrivals")
    return sorted(row.tenant for row in rows)


# -- consistency: order events per partition ------------------------------------------------

OUTBOX_EVENT_PREFIX = "outbox-"


def order_event_records(tenant: str, days: Iterable[date]) -> Iterator[tuple[str, str, str]]:
    """(event_id, event_type, aggregate_id) of the outbox-derived order events of a tenant,
    one (tenant, day) partition at a time, paged by the driver."""
    check_tenant(tenant)
    for day in days:
        rows = _keyspace_session().execute(
            "SELECT event_id, event_type, aggregate_id FROM events_by_day "
            "WHERE tenant = %s AND day = %s",
            (tenant, day),
        )
        for row in rows:
            if row.event_id.startswith(OUTBOX_EVENT_PREFIX):
                yield row.event_id, row.event_type, row.aggregate_id


def delete_order_events(tenant: str, days: Iterable[date], event_ids: Iterable[str]) -> int:
    """Delete these outbox-derived events of a tenant, found in the given days' partitions."""
    wanted = set(event_ids)
    found = 0
    check_tenant(tenant)
    for day in days:
        rows = _keyspace_session().execute(
            "SELECT event_time, event_id FROM events_by_day WHERE tenant = %s AND day = %s",
            (tenant, day),
        )
        for row in rows:
            if row.event_id in wanted:
                _keyspace_session().execute(
                    "DELETE FROM events_by_day WHERE tenant = %s AND day = %s "
                    "AND event_time = %s AND event_id = %s",
                    (tenant, day, row.event_time, row.event_id),
                )
                found += 1
    return found
