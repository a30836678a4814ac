"""Read queries over orders: what operators and the CLI look up."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.analytics import ORDERS_CANCELLED, ORDERS_PLACED, REVENUE
from domain.orders import PLACED, PlacedOrder, PricedLine
from domain.outbox import ORDER_EVENTS, OutboxMessage
from domain.tenancy import check_tenant
from stores.postgres.outbox import outbox_message
from stores.postgres.schema import Order, OrderItem, OutboxEvent, unit_of_work


def load_order(session: Session, tenant: str, order_id: str) -> PlacedOrder | None:
    order = session.get(Order, (tenant, order_id))
    if order is None:
        return None
    lines = session.scalars(
        select(OrderItem)
        .where(OrderItem.tenant_id == tenant, OrderItem.order_id == order_id)
        .order_by(OrderItem.line_no)
    )
    return PlacedOrder(
        tenant=tenant,
        order_id=order_id,
        customer_id=order.customer_id,
        status=order.status,
        currency=order.currency,
        total=order.total,
        lines=[
            PricedLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
            for line in lines
        ],
        placed_at=order.placed_at,
        version=order.version,
    )


def find_order(tenant: str, order_id: str) -> PlacedOrder | None:
    with unit_of_work() as session:
        return load_order(session, check_tenant(tenant), order_id)


def latest_orders(tenant: str, limit: int = 5) -> list[str]:
    """The ids of a tenant's most recently placed orders, newest first."""
    with unit_of_work() as session:
        return list(
            session.scalars(
                select(Order.order_id)
                .where(Order.tenant_id == check_tenant(tenant))
                .order_by(Order.placed_at.desc())
                .limit(limit)
            )
        )


def order_truth(tenant: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Decimal]]:
    """What PostgreSQL says of each UTC hour in [start, end): orders placed, orders cancelled and
    the revenue of the placed ones per currency (exact). Hours without orders are absent."""
    tenant = check_tenant(tenant)
    hour = func.date_trunc("hour", func.timezone("UTC", Order.placed_at))
    cancelled_hour = func.date_trunc("hour", func.timezone("UTC", Order.cancelled_at))
    truth: dict[datetime, dict[str, Decimal]] = {}

    def add(at: datetime, metric: str, value: Decimal | int) -> None:
        metrics = truth.setdefault(at.replace(tzinfo=UTC), {})
        metrics[metric] = metrics.get(metric, Decimal(0)) + Decimal(value)

    with unit_of_work() as session:
        placed = session.execute(
            select(hour, Order.currency, func.count(), func.sum(Order.total))
            .where(Order.tenant_id == tenant, Order.placed_at >= start, Order.placed_at < end)
            .group_by(hour, Order.currency)
        )
        for at, currency, count, revenue in placed:
            add(at, ORDERS_PLACED, count)
            add(at, REVENUE + currency, revenue)
        cancelled = session.execute(
            select(cancelled_hour, func.count())
            .where(
                Order.tenant_id == tenant,
                Order.cancelled_at >= start,
                Order.cancelled_at < end,
            )
            .group_by(cancelled_hour)
        )
        for at, count in cancelled:
            add(at, ORDERS_CANCELLED, count)
    return truth


def order_times_since(tenant: str, since: datetime) -> list[datetime]:
    """When a tenant's orders were placed or cancelled at or after `since`."""
    tenant = check_tenant(tenant)
    with unit_of_work() as session:
        placed = session.scalars(
            select(Order.placed_at).where(Order.tenant_id == tenant, Order.placed_at >= since)
        )
        cancelled = session.scalars(
            select(Order.cancelled_at).where(Order.tenant_id == tenant, Order.cancelled_at >= since)
        )
        return [*placed, *(at for at in cancelled if at is not None)]


def order_events_between(tenant: str, start: datetime, end: datetime) -> list[OutboxMessage]:
    """A tenant's order events (placed, cancelled) written in [start, end), in event order: what
    Cassandra's analytics events are derived from."""
    tenant = check_tenant(tenant)
    with unit_of_work() as session:
        rows = session.scalars(
            select(OutboxEvent)
            .where(
                OutboxEvent.tenant_id == tenant,
                OutboxEvent.event_type.in_(sorted(ORDER_EVENTS)),
                OutboxEvent.created_at >= start,
                OutboxEvent.created_at < end,
            )
            .order_by(OutboxEvent.event_id)
        )
        return [outbox_message(row) for row in rows]


def order_lines(tenant: str, since: datetime) -> list[tuple[str, str, str]]:
    """(order_id, customer_id, sku) of every line of the tenant's orders placed since `since`
    and still placed: a cancelled order's lines are not returned. One set-based read, streamed
    from the server in chunks, in (order, line) order."""
    statement = (
        select(Order.order_id, Order.customer_id, OrderItem.sku)
        .join(
            OrderItem,
            (OrderItem.tenant_id == Order.tenant_id) & (OrderItem.order_id == Order.order_id),
        )
        .where(
            Order.tenant_id == check_tenant(tenant),
            Order.placed_at >= since,
            Order.status == PLACED,
        )
        .order_by(Order.order_id, OrderItem.line_no)
        .execution_options(yield_per=20_000)
    )
    with unit_of_work() as session:
        return [tuple(row) for row in session.execute(statement)]
