"""Outbox events: what a change in the source of truth means to the stores derived from it.

An event is written in the same transaction as the change it describes, and each derived store
reads it later (at least once). Its payload is JSON-ready and self-contained: amounts are the
exact decimal strings PostgreSQL stored, and every event carries the aggregate's version, so a
store can refuse an older event arriving after a newer one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ORDER_PLACED = "order_placed"
ORDER_CANCELLED = "order_cancelled"
STOCK_CHANGED = "stock_changed"
CUSTOMER_UPSERTED = "customer_upserted"
ORDER_EVENTS = frozenset({ORDER_PLACED, ORDER_CANCELLED})
EVENT_TYPES = frozenset({*ORDER_EVENTS, STOCK_CHANGED, CUSTOMER_UPSERTED})
MAX_DELIVERY_ATTEMPTS = 5
"""A store that refused one event this many times (not for being down: for the event itself)
gets it as a dead letter: out of its queue, so it no longer holds up every other event, and
visible with its error until an operator replays it."""


@dataclass(frozen=True)
class Event:
    """An event to publish, before it has an id."""

    tenant: str
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class OutboxMessage:
    """A published event as a derived store receives it."""

    event_id: int
    tenant: str
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class OrderLineState:
    sku: str
    quantity: int
    unit_price: str


@dataclass(frozen=True)
class OrderState:
    """An order as its events describe it; amounts are the stored decimal strings."""

    tenant: str
    order_id: str
    customer_id: str
    status: str
    currency: str
    total: str
    placed_at: datetime
    version: int
    lines: Sequence[OrderLineState]


def order_event(event_type: str, order: OrderState) -> Event:
    """`order_placed` or `order_cancelled`, carrying the whole order."""
    if event_type not in ORDER_EVENTS:
        raise ValueError(f"{event_type!r} is not an order event")
    payload = {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "status": order.status,
        "currency": order.currency,
        "total": order.total,
        "placed_at": order.placed_at.isoformat(),
        "version": order.version,
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price": line.unit_price}
            for line in order.lines
        ],
    }
    return Event(order.tenant, "order", order.order_id, event_type, payload)


def stock_changed(tenant: str, sku: str, on_hand: int, version: int) -> Event:
    """A sku's absolute stock level at a version: the newest version wins downstream."""
    payload = {"sku": sku, "on_hand": on_hand, "version": version}
    return Event(tenant, "inventory", sku, STOCK_CHANGED, payload)


def customer_upserted(tenant: str, customer_id: str, email: str, name: str, version: int) -> Event:
    payload = {"customer_id": customer_id, "email": email, "name": name, "version": version}
    return Event(tenant, "customer", customer_id, CUSTOMER_UPSERTED, payload)
