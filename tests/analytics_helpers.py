"""A known day of orders and storefront events at fixed past hours, for rollup tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

from domain.analytics import StorefrontEvent
from domain.orders import CatalogPrice, OrderRequest, price_order
from stores import cassandra, postgres
from tasks.outbox import ROUTES, project_to_cassandra

CATALOG = {
    "MUG-1": CatalogPrice("9.50", "EUR"),
    "TEA-1": CatalogPrice("4.25", "EUR"),
    "POT-1": CatalogPrice("3100", "JPY"),
}


def known_day(days_ago: int = 3) -> datetime:
    day = (datetime.now(UTC) - timedelta(days=days_ago)).date()
    return datetime.combine(day, datetime.min.time(), UTC)


def place(tenant: str, key: str, lines: dict[str, int], currency: str, at: datetime) -> str:
    """Place an order in PostgreSQL, then move it (and its outbox events) to `at`."""
    request = OrderRequest.model_validate(
        {
            "tenant": tenant,
            "customer": {"customer_id": f"c-{key}", "email": "a@example.com", "name": "A"},
            "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines.items()],
            "currency": currency,
            "idempotency_key": key,
            "payment_reference": f"pay-{key}",
        }
    )
    placed = postgres.place_order(price_order(request, CATALOG), ROUTES).order
    with postgres.unit_of_work() as session:
        session.execute(
            update(postgres.Order)
            .where(postgres.Order.tenant_id == tenant, postgres.Order.order_id == placed.order_id)
            .values(placed_at=at)
        )
        session.execute(
            update(postgres.OutboxEvent)
            .where(
                postgres.OutboxEvent.tenant_id == tenant,
                postgres.OutboxEvent.aggregate_id == placed.order_id,
            )
            .values(created_at=at)
        )
    return placed.order_id


def cancel(tenant: str, order_id: str, at: datetime) -> None:
    postgres.cancel_order(tenant, order_id, ROUTES)
    with postgres.unit_of_work() as session:
        session.execute(
            update(postgres.Order)
            .where(postgres.Order.tenant_id == tenant, postgres.Order.order_id == order_id)
            .values(cancelled_at=at)
        )
        session.execute(
            update(postgres.OutboxEvent)
            .where(
                postgres.OutboxEvent.tenant_id == tenant,
                postgres.OutboxEvent.aggregate_id == order_id,
                postgres.OutboxEvent.event_type == "order_cancelled",
            )
            .values(created_at=at)
        )


def deliver(tenant: str, start: datetime, end: datetime, skip: set[str] = frozenset()) -> None:
    """Project the tenant's order events of [start, end) into Cassandra, except orders `skip`."""
    messages = postgres.order_events_between(tenant, start, end)
    project_to_cassandra([m for m in messages if m.aggregate_id not in skip])


def view(tenant: str, n: int, at: datetime, kind: str, user: str, sku: str | None = "MUG-1"):
    return StorefrontEvent(
        event_id=f"sf-{n}",
        tenant=tenant,
        occurred_at=at,
        event_type=kind,
        user_id=user,
        session_id=f"s-{user}",
        sku=sku,
    )


def seed_known_day(tenant: str, day: datetime, skip: set[str] = frozenset()) -> dict[str, str]:
    """Orders: 10:05 EUR 19.00 (MUG-1 x2), 10:20 EUR 4.25 (TEA-1), cancelled 11:10, 11:30
    JPY 3100 (POT-1). Storefront: 10h 3 views, 1 cart, 1 checkout by c-1, c-2; 11h 2 views
    by c-3. Returns the order ids by name."""
    postgres.ensure_tenant(tenant)
    postgres.set_inventory(tenant, {"MUG-1": 100, "TEA-1": 100, "POT-1": 100}, ROUTES)
    h10, h11 = day + timedelta(hours=10), day + timedelta(hours=11)
    orders = {
        "mugs": place(tenant, "mugs", {"MUG-1": 2}, "EUR", h10 + timedelta(minutes=5)),
        "tea": place(tenant, "tea", {"TEA-1": 1}, "EUR", h10 + timedelta(minutes=20)),
        "pot": place(tenant, "pot", {"POT-1": 1}, "JPY", h11 + timedelta(minutes=30)),
    }
    cancel(tenant, orders["tea"], h11 + timedelta(minutes=10))
    deliver(tenant, day, day + timedelta(days=1), {orders[name] for name in skip})
    cassandra.write_storefront_events(
        [
            view(tenant, 1, h10 + timedelta(minutes=1), "product_viewed", "c-1"),
            view(tenant, 2, h10 + timedelta(minutes=2), "product_viewed", "c-1"),
            view(tenant, 3, h10 + timedelta(minutes=3), "product_viewed", "c-2"),
            view(tenant, 4, h10 + timedelta(minutes=4), "added_to_cart", "c-1"),
            view(tenant, 5, h10 + timedelta(minutes=5), "checkout_started", "c-1", None),
            view(tenant, 6, h11 + timedelta(minutes=1), "product_viewed", "c-3"),
            view(tenant, 7, h11 + timedelta(minutes=2), "product_viewed", "c-3", "POT-1"),
        ]
    )
    return orders


D = Decimal
EXPECTED_HOURS = {
    10: {
        "orders_placed": (D(2), 2),
        "revenue:EUR": (D("23.25"), 2),
        "units:MUG-1": (D(2), 1),
        "units:TEA-1": (D(1), 1),
        "views": (D(3), 3),
        "carts": (D(1), 1),
        "checkouts": (D(1), 1),
        "customers": (D(2), 2),
        "view_to_cart": (D("0.3333"), 4),
        "cart_to_checkout": (D("1.0000"), 2),
        "checkout_to_order": (D("2.0000"), 3),
    },
    11: {
        "orders_placed": (D(1), 1),
        "orders_cancelled": (D(1), 1),
        "revenue:JPY": (D(3100), 1),
        "units:POT-1": (D(1), 1),
        "views": (D(2), 2),
        "customers": (D(1), 1),
        "view_to_cart": (D("0.0000"), 2),
    },
}
EXPECTED_DAY = {
    "orders_placed": (D(3), 3),
    "orders_cancelled": (D(1), 1),
    "revenue:EUR": (D("23.25"), 2),
    "revenue:JPY": (D(3100), 1),
    "units:MUG-1": (D(2), 1),
    "units:TEA-1": (D(1), 1),
    "units:POT-1": (D(1), 1),
    "views": (D(5), 5),
    "carts": (D(1), 1),
    "checkouts": (D(1), 1),
    "customers": (D(3), 3),
    "view_to_cart": (D("0.2000"), 6),
    "cart_to_checkout": (D("1.0000"), 2),
    "checkout_to_order": (D("3.0000"), 4),
}
