"""Cassandra: analytics events as a time series per tenant and day, and their rollups.

Partitions are (tenant, day) so a tenant's day is one partition and tenants never share one.
Writes are prepared statements run concurrently (`execute_concurrent_with_args`): the driver's
bulk path. Cassandra writes are upserts by primary key, so replaying an event changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from urllib.parse import parse_qs, urlsplit

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement

from domain.settings import public_address, settings
from domain.tenancy import check_tenant
from stores.health import StoreHealth, measure

STORE = "cassandra"
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,47}")

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
    hosts: list[str]
    port: int
    keyspace: str
    replication_factor: int
    username: str | None
    password: str | None


def connection_config() -> ConnectionConfig:
    """Parse `cassandra://[user:pass@]host[,host]:port/keyspace[?replication_factor=N]`."""
    url = urlsplit(settings().cassandra_url.get_secret_value())
    keyspace = url.path.strip("/") or "polyflow"
    if not IDENTIFIER.fullmatch(keyspace):
        raise ValueError(f"POLYFLOW_CASSANDRA_URL: invalid keyspace name {keyspace!r}")
    hostlist = url.netloc.rsplit("@", 1)[-1]
    hosts = [h.rsplit(":", 1)[0] for h in hostlist.split(",")]
    replication = int(parse_qs(url.query).get("replication_factor", ["1"])[0])
    return ConnectionConfig(
        hosts=hosts,
        port=url.port or 9042,
        keyspace=keyspace,
        replication_factor=replication,
        username=url.username,
        password=url.password,
    )


@cache
def _cluster() -> Cluster:
    config = connection_config()
    auth = (
        PlainTextAuthProvider(config.username, config.password or "") if config.username else None
    )
    timeout = settings().connect_timeout
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        request_timeout=timeout * 4,
    )
    return Cluster(
        contact_points=config.hosts,
        port=config.port,
        auth_provider=auth,
        connect_timeout=timeout,
        control_connection_timeout=timeout,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )


@cache
def session() -> Session:
    """The process-wide session; the driver pools connections per host."""
    return _cluster().connect()


def close() -> None:
    if _cluster.cache_info().currsize:
        _cluster().shutdown()
    _insert_event.cache_clear()
    session.cache_clear()
    _cluster.cache_clear()


def bootstrap() -> None:
    """Create the keyspace and tables if missing."""
    config = connection_config()
    # Identifiers cannot be bound in CQL; the keyspace name was checked against IDENTIFIER.
    create_keyspace = (
        f"CREATE KEYSPACE IF NOT EXISTS {config.keyspace} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {config.replication_factor}}}"
    )
    cql = session()
    cql.execute(create_keyspace)
    cql.set_keyspace(config.keyspace)
    for table in TABLES:
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


def events_on(tenant: str, day: date) -> list[AnalyticsEvent]:
    """All events of one tenant on one day, in time order."""
    rows = _keyspace_session().execute(
        "SELECT tenant, event_time, event_id, event_type, aggregate_id, amount, currency, payload"
        " FROM events_by_day WHERE tenant = %s AND day = %s",
        (check_tenant(tenant), day),
    )
    return [AnalyticsEvent(**row._asdict()) for row in rows]
