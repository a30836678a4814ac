"""Consistency checksums over the sources of truth in PostgreSQL, computed in SQL.

Each named source is a query of (rid, sig) rows for one tenant, the signature spelled as
`domain.consistency.signature` spells it (`concat_ws(chr(30), ...)`). `bucket_digest` reduces
a source to one row per bucket in one aggregate query, with the bucket and the record hash that
`domain.consistency` defines; `bucket_records` reads the records of a few buckets only.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import text

from domain.consistency import BUCKETS, Digest
from domain.outbox import ORDER_EVENTS, OutboxMessage
from domain.tenancy import check_tenant
from stores.postgres.outbox import outbox_message
from stores.postgres.schema import engine

SOURCES: dict[str, str] = {
    "orders": "SELECT order_id AS rid, concat_ws(chr(30), version, status) AS sig "
    "FROM orders WHERE tenant_id = :tenant",
    "order_lines": "SELECT o.order_id || ':' || i.sku AS rid, "
    "concat_ws(chr(30), i.quantity, o.status, o.version) AS sig "
    "FROM orders o JOIN order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.order_id "
    "WHERE o.tenant_id = :tenant",
    "order_events": "SELECT 'outbox-' || event_id AS rid, "
    "concat_ws(chr(30), event_type, aggregate_id) AS sig FROM outbox "
    "WHERE tenant_id = :tenant AND event_type = ANY(:order_events)",
    "inventory": "SELECT sku AS rid, concat_ws(chr(30), version, on_hand) AS sig "
    "FROM inventory WHERE tenant_id = :tenant",
    "users": "SELECT user_id AS rid, concat_ws(chr(30), version, email, name) AS sig "
    "FROM users WHERE tenant_id = :tenant",
}
"""What each pair compares on the PostgreSQL side, per tenant."""

BUCKET_SQL = f"(get_byte(decode(md5(rid), 'hex'), 0) * 256 + get_byte(decode(md5(rid), 'hex'), 1)) % {BUCKETS}"  # noqa: E501
HASH_SQL = "('x' || substr(md5(rid || chr(31) || sig), 1, 15))::bit(60)::bigint"
# The statements are built once from the constants above, never from input.
DIGEST_QUERIES = {
    name: text(
        f"SELECT {BUCKET_SQL} AS bucket, count(*), sum({HASH_SQL}) "  # noqa: S608
        f"FROM ({query}) AS records GROUP BY bucket"
    )
    for name, query in SOURCES.items()
}
RECORD_QUERIES = {
    name: text(f"SELECT rid, sig FROM ({query}) AS records WHERE {BUCKET_SQL} = ANY(:buckets)")  # noqa: S608
    for name, query in SOURCES.items()
}


def _parameters(tenant: str, **more: Any) -> dict[str, Any]:
    return {"tenant": check_tenant(tenant), "order_events": sorted(ORDER_EVENTS), **more}


def bucket_digest(source: str, tenant: str) -> Digest:
    """Count and checksum per bucket of a source, aggregated by PostgreSQL: 1,024 rows at most
    cross the wire whatever the tenant's size."""
    with engine().connect() as conn:
        rows = conn.execute(DIGEST_QUERIES[source], _parameters(tenant)).all()
        return Digest.from_rows(rows)


def bucket_records(source: str, tenant: str, buckets: Collection[int]) -> dict[str, str]:
    """The (rid, sig) records of a source in the given buckets."""
    if not buckets:
        return {}
    with engine().connect() as conn:
        parameters = _parameters(tenant, buckets=sorted(buckets))
        rows = conn.execute(RECORD_QUERIES[source], parameters)
        return {rid: sig for rid, sig in rows}


def pending_aggregates(tenant: str, store: str) -> set[str]:
    """What is on its way to `store` for a tenant: the aggregate ids of its live pending outbox
    deliveries, and those events' ids as `outbox-<id>` (how Cassandra keys them). Dead letters
    are not on their way: they are drift until an operator replays them."""
    query = text(
        "SELECT e.event_id, e.aggregate_id FROM outbox_deliveries d JOIN outbox e USING (event_id) "
        "WHERE d.store = :store AND d.delivered_at IS NULL AND d.dead_at IS NULL "
        "AND e.tenant_id = :tenant"
    )
    with engine().connect() as conn:
        rows = conn.execute(query, _parameters(tenant, store=store)).all()
    return {aggregate for _, aggregate in rows} | {f"outbox-{event}" for event, _ in rows}


def latest_events(
    tenant: str, aggregate_ids: Collection[str], event_types: Collection[str]
) -> list[OutboxMessage]:
    """The newest outbox event of each aggregate among the given types: the aggregate's current
    state as the projections take it (every change of it published one), in event order."""
    if not aggregate_ids:
        return []
    query = text(
        "SELECT * FROM (SELECT DISTINCT ON (aggregate_id) event_id, tenant_id, aggregate_type, "
        "aggregate_id, event_type, payload, created_at FROM outbox "
        "WHERE tenant_id = :tenant AND aggregate_id = ANY(:ids) AND event_type = ANY(:types) "
        "ORDER BY aggregate_id, event_id DESC) AS latest ORDER BY event_id"
    )
    parameters = _parameters(tenant, ids=sorted(aggregate_ids), types=sorted(event_types))
    with engine().connect() as conn:
        return [outbox_message(row) for row in conn.execute(query, parameters).all()]


def events_by_id(tenant: str, event_ids: Collection[int]) -> list[OutboxMessage]:
    """The tenant's outbox events with these ids (another tenant's never), in event order."""
    query = text(
        "SELECT event_id, tenant_id, aggregate_type, aggregate_id, event_type, payload, "
        "created_at FROM outbox WHERE tenant_id = :tenant AND event_id = ANY(:ids) "
        "ORDER BY event_id"
    )
    with engine().connect() as conn:
        rows = conn.execute(query, _parameters(tenant, ids=sorted(event_ids))).all()
        return [outbox_message(row) for row in rows]


def order_event_days(tenant: str) -> list[Any]:
    """The UTC days on which the tenant's order events were written: Cassandra's partitions."""
    query = text(
        "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS day FROM outbox "
        "WHERE tenant_id = :tenant AND event_type = ANY(:order_events) ORDER BY day"
    )
    with engine().connect() as conn:
        return [row.day for row in conn.execute(query, _parameters(tenant))]


def known_tenants() -> list[str]:
    """Every tenant PostgreSQL knows, sorted."""
    with engine().connect() as conn:
        rows = conn.execute(text("SELECT tenant_id FROM tenants ORDER BY tenant_id"))
        return list(rows.scalars())
