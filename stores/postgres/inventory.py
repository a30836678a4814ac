"""Inventory in PostgreSQL: absolute stock levels, and the stock moves orders make.

Every change writes a `stock_changed` outbox event in its own transaction, so Redis learns
every stock level, whoever changed it: an order, a cancellation, `inventory set` or a catalog
import.

What an absolute level means: the count that was available to sell at `as_of` (for a catalog
import, when its file was written; for `inventory set`, now). Orders placed since then have
already taken units that the count still includes, and cancellations since then have returned
units it does not, so the stored level is the count minus units placed plus units cancelled
after `as_of`, never below zero. The rows are locked first, in sku order: an order committing
meanwhile is either counted by that correction or waits and then moves the new level. So an
import of an older export can never hand out units that orders already took.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from domain.orders import OrderRejected
from domain.outbox import Event, stock_changed
from domain.tenancy import check_tenant
from stores.postgres.outbox import Routes, publish
from stores.postgres.schema import Inventory, unit_of_work

LOCK_LEVELS = text(
    """
    SELECT sku FROM inventory WHERE tenant_id = :tenant AND sku = ANY(:skus)
    ORDER BY sku FOR UPDATE
    """
)

SET_LEVELS = text(
    """
    WITH levels AS (
        SELECT * FROM unnest(CAST(:skus AS text[]), CAST(:levels AS integer[])) AS l(sku, counted)
    ),
    since AS (
        SELECT i.sku,
               coalesce(sum(i.quantity) FILTER (
                   WHERE o.placed_at > CAST(:as_of AS timestamptz)), 0)
             - coalesce(sum(i.quantity) FILTER (
                   WHERE o.cancelled_at > CAST(:as_of AS timestamptz)), 0) AS taken
        FROM orders o
        JOIN order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.order_id
        WHERE o.tenant_id = :tenant
          AND (o.placed_at > CAST(:as_of AS timestamptz)
               OR o.cancelled_at > CAST(:as_of AS timestamptz))
          AND i.sku = ANY(:skus)
        GROUP BY i.sku
    )
    INSERT INTO inventory (tenant_id, sku, on_hand, version)
    SELECT :tenant, levels.sku,
           greatest(least(levels.counted, 0), levels.counted - coalesce(since.taken, 0)), 1
    FROM levels LEFT JOIN since USING (sku)
    ON CONFLICT (tenant_id, sku) DO UPDATE
    SET on_hand = excluded.on_hand, version = inventory.version + 1, updated_at = now()
    WHERE inventory.on_hand <> excluded.on_hand
    RETURNING sku, on_hand, version
    """
)
"""Two array parameters however many skus: a multi-row VALUES list needs three parameters per
row, which psycopg and PostgreSQL parse ~30x slower at catalog-chunk sizes."""


def set_inventory(
    tenant: str, stock: Mapping[str, int], routes: Routes, as_of: datetime | None = None
) -> list[int]:
    """Set stock levels counted at `as_of` (default: now) for many skus in one transaction;
    unchanged levels stay untouched. Returns the ids of the stock events it published."""
    check_tenant(tenant)
    if not stock:
        return []
    skus = sorted(stock)
    with unit_of_work() as session:
        session.execute(LOCK_LEVELS, {"tenant": tenant, "skus": skus})
        changed = session.execute(
            SET_LEVELS,
            {
                "tenant": tenant,
                "skus": skus,
                "levels": [stock[sku] for sku in skus],
                "as_of": as_of,
            },
        ).all()
        return publish(session, [stock_changed(tenant, *row) for row in changed], routes)


def get_inventory(tenant: str, skus: list[str]) -> dict[str, int]:
    """Stock levels of the given skus that exist."""
    check_tenant(tenant)
    with unit_of_work() as session:
        rows = session.execute(
            select(Inventory.sku, Inventory.on_hand).where(
                Inventory.tenant_id == tenant, Inventory.sku.in_(skus)
            )
        )
        return {sku: on_hand for sku, on_hand in rows}


def move_stock(session: Session, tenant: str, sku: str, delta: int) -> Event:
    """Change one sku's stock by `delta` in the caller's transaction; refuse (OrderRejected) to
    go below zero. Returns the stock event to publish."""
    row = session.execute(
        update(Inventory)
        .where(Inventory.tenant_id == tenant, Inventory.sku == sku, Inventory.on_hand >= -delta)
        .values(on_hand=Inventory.on_hand + delta, version=Inventory.version + 1)
        .returning(Inventory.on_hand, Inventory.version)
    ).one_or_none()
    if row is None:
        available = session.scalar(
            select(Inventory.on_hand).where(Inventory.tenant_id == tenant, Inventory.sku == sku)
        )
        if available is None:
            raise OrderRejected(f"sku {sku!r} has no inventory")
        raise OrderRejected(
            f"insufficient stock for sku {sku!r}: {available} available, {-delta} asked"
        )
    return stock_changed(tenant, sku, row.on_hand, row.version)
