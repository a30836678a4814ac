"""Read queries over orders: what operators and the CLI look up."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.orders import PlacedOrder, PricedLine
from domain.tenancy import check_tenant
from stores.postgres.schema import Order, OrderItem, unit_of_work


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
