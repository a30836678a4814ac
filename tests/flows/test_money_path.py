"""Money and stock on the real stores: exact amounts per currency, conflicting replays, and
every stock change reaching Redis through the outbox."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from domain.orders import OrderConflict, OrderRejected, OrderRequest
from flows.ingest_catalog import ingest_catalog
from flows.place_order import cancel_order, place_order, set_stock
from flows.sync_outbox import sync_outbox
from stores import cassandra, mongodb, postgres, redis
from tasks.outbox import ROUTES
from tests.helpers import catalog_product


def order(
    tenant: str, key: str, lines: dict[str, int], currency: str, **extra: Any
) -> OrderRequest:
    return OrderRequest.model_validate(
        {
            "tenant": tenant,
            "customer": {"customer_id": "c-1", "email": "ann@example.com", "name": "Ann"},
            "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines.items()],
            "currency": currency,
            "idempotency_key": key,
            "payment_reference": f"pay-{key}",
        }
    )


def stored_amounts(tenant: str, order_id: str) -> tuple[str, list[str], str]:
    """Order total, unit prices and payment exactly as PostgreSQL holds them (as text)."""
    with postgres.unit_of_work() as session:
        total = session.scalar(
            select(postgres.Order.total).where(
                postgres.Order.tenant_id == tenant, postgres.Order.order_id == order_id
            )
        )
        units = session.scalars(
            select(postgres.OrderItem.unit_price)
            .where(postgres.OrderItem.tenant_id == tenant, postgres.OrderItem.order_id == order_id)
            .order_by(postgres.OrderItem.line_no)
        ).all()
        payment = session.scalar(
            select(postgres.Payment.amount).where(
                postgres.Payment.tenant_id == tenant, postgres.Payment.order_id == order_id
            )
        )
    return str(total), [str(unit) for unit in units], str(payment)


@pytest.mark.parametrize(
    ("currency", "prices", "quantities", "units", "total"),
    [
        ("JPY", {"A-1": "1200", "B-1": "350"}, {"A-1": 3, "B-1": 1}, ["1200", "350"], "3950"),
        ("EUR", {"A-1": "9.5", "B-1": "4.25"}, {"A-1": 2, "B-1": 4}, ["9.50", "4.25"], "36.00"),
        ("KWD", {"A-1": "1.25", "B-1": "0.005"}, {"A-1": 1, "B-1": 3}, ["1.250", "0.005"], "1.265"),
    ],
)
def test_amounts_are_stored_and_published_at_the_currencys_precision(
    tenant: str,
    currency: str,
    prices: dict[str, str],
    quantities: dict[str, int],
    units: list[str],
    total: str,
) -> None:
    postgres.ensure_tenant(tenant)
    mongodb.upsert_products(
        tenant, [catalog_product(sku, price, currency) for sku, price in prices.items()]
    )
    postgres.set_inventory(tenant, dict.fromkeys(prices, 10), ROUTES)

    placed = place_order(order(tenant, "k-1", quantities, currency))

    assert stored_amounts(tenant, placed.order_id) == (total, units, total)
    assert redis.get_versioned(tenant, "order", placed.order_id)["total"] == total
    [event] = [
        e
        for e in cassandra.events_on(tenant, placed.placed_at.astimezone(UTC).date())
        if e.aggregate_id == placed.order_id
    ]
    assert event.amount == Decimal(total)
    with postgres.unit_of_work() as session:
        payload = session.scalar(
            select(postgres.OutboxEvent.payload).where(
                postgres.OutboxEvent.tenant_id == tenant,
                postgres.OutboxEvent.event_type == "order_placed",
            )
        )
    assert payload["total"] == total
    assert [line["unit_price"] for line in payload["lines"]] == units


def test_a_replayed_key_with_another_request_is_refused_and_changes_nothing(tenant: str) -> None:
    postgres.ensure_tenant(tenant)
    mongodb.upsert_products(tenant, [catalog_product("A-1", "2.00")])
    postgres.set_inventory(tenant, {"A-1": 10}, ROUTES)
    first = place_order(order(tenant, "k-1", {"A-1": 1}, "EUR"))

    with pytest.raises(OrderConflict, match=r"already placed order .* different request"):
        place_order(order(tenant, "k-1", {"A-1": 5}, "EUR"))

    assert postgres.get_inventory(tenant, ["A-1"]) == {"A-1": 9}
    assert postgres.find_order(tenant, first.order_id).total == Decimal("2.00")
    assert place_order(order(tenant, "k-1", {"A-1": 1}, "EUR")).replayed


def test_a_catalog_price_with_too_many_decimals_refuses_the_order(tenant: str) -> None:
    postgres.ensure_tenant(tenant)
    mongodb.upsert_products(tenant, [catalog_product("A-1", "2.005")])
    postgres.set_inventory(tenant, {"A-1": 10}, ROUTES)

    with pytest.raises(OrderRejected, match=r"2\.005 has more decimals than EUR allows"):
        place_order(order(tenant, "k-1", {"A-1": 1}, "EUR"))


def test_inventory_set_reaches_redis_through_the_outbox(tenant: str) -> None:
    set_stock(tenant, {"A-1": 7, "B-1": 0})
    assert redis.get_versioned(tenant, "stock", "A-1")["on_hand"] == "7"

    postgres.set_inventory(tenant, {"A-1": 3}, ROUTES)
    assert redis.get_versioned(tenant, "stock", "A-1")["on_hand"] == "7"
    sync_outbox()
    assert redis.get_versioned(tenant, "stock", "A-1")["on_hand"] == "3"
    assert redis.get_versioned(tenant, "stock", "B-1")["on_hand"] == "0"


def test_an_import_with_stock_reaches_redis_and_never_returns_units_sold_since(
    tenant: str, tmp_path: Path
) -> None:
    exported = tmp_path / "products.csv"
    exported.write_text(
        "sku,name,price,currency,stock\nA-1,Kettle,20.00,EUR,10\nB-1,Mug,5.00,EUR,4\n"
    )
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(exported, (an_hour_ago, an_hour_ago))
    ingest_catalog(str(exported), tenant)
    sync_outbox()
    assert redis.get_versioned(tenant, "stock", "A-1")["on_hand"] == "10"

    sold = place_order(order(tenant, "k-1", {"A-1": 3}, "EUR"))
    cancelled = place_order(order(tenant, "k-2", {"B-1": 1}, "EUR"))
    cancel_order(tenant, cancelled.order_id)
    assert postgres.get_inventory(tenant, ["A-1", "B-1"]) == {"A-1": 7, "B-1": 4}

    ingest_catalog(str(exported), tenant)  # the same export, counted an hour ago, again
    sync_outbox()

    assert sold.status == "placed"
    assert postgres.get_inventory(tenant, ["A-1", "B-1"]) == {"A-1": 7, "B-1": 4}
    assert redis.get_versioned(tenant, "stock", "A-1")["on_hand"] == "7"

    exported.write_text("sku,name,price,currency,stock\nA-1,Kettle,20.00,EUR,25\n")
    ingest_catalog(str(exported), tenant)  # a count made now: taken as it is
    sync_outbox()
    assert postgres.get_inventory(tenant, ["A-1"]) == {"A-1": 25}
    assert redis.get_versioned(tenant, "stock", "A-1")["on_hand"] == "25"
