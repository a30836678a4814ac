"""Orders, tenants and users in PostgreSQL: each change in one transaction with its events.

The rules were applied before these functions run (`domain.orders`); here they are persisted
exactly as decided: the priced lines, the total, the reservations in sku order, the transition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, insert, tuple_
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.orm import Session

from domain.orders import (
    CANCELLED,
    PLACED,
    OrderRejected,
    PlacedOrder,
    PricedOrder,
    UserProfile,
    check_replay,
    check_transition,
)
from domain.outbox import (
    ORDER_CANCELLED,
    ORDER_PLACED,
    Event,
    OrderLineState,
    OrderState,
    customer_upserted,
    order_event,
)
from domain.tenancy import check_tenant
from stores.postgres.inventory import move_stock
from stores.postgres.outbox import Routes, publish
from stores.postgres.queries import load_order
from stores.postgres.schema import Order, OrderItem, Payment, Tenant, User, unit_of_work


@dataclass(frozen=True)
class Committed:
    """What a transaction committed: the order as stored, and the outbox events it wrote."""

    order: PlacedOrder
    event_ids: list[int]


class _AlreadyPlaced(Exception):
    """A concurrent request with the same idempotency key committed first."""


def upsert_tenants(tenants: Mapping[str, str]) -> None:
    """Create or rename tenants, keyed by tenant id."""
    rows = [{"tenant_id": check_tenant(t), "name": name} for t, name in tenants.items()]
    if not rows:
        return
    statement = upsert(Tenant).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[Tenant.tenant_id], set_={"name": statement.excluded.name}
    )
    with unit_of_work() as session:
        session.execute(statement)


def ensure_tenant(tenant: str) -> None:
    """Create the tenant if it does not exist yet; an existing tenant is left as it is."""
    statement = upsert(Tenant).values(tenant_id=check_tenant(tenant), name=tenant)
    with unit_of_work() as session:
        session.execute(statement.on_conflict_do_nothing(index_elements=[Tenant.tenant_id]))


def _upsert_user(
    session: Session, tenant: str, user_id: str, email: str, name: str
) -> Event | None:
    """Insert or update a user; its event at the new version, or None when nothing changed."""
    statement = upsert(User).values(tenant_id=tenant, user_id=user_id, email=email, name=name)
    statement = statement.on_conflict_do_update(
        index_elements=[User.tenant_id, User.user_id],
        set_={
            "email": statement.excluded.email,
            "name": statement.excluded.name,
            "version": User.version + 1,
            "updated_at": func.now(),
        },
        where=tuple_(User.email, User.name).is_distinct_from(
            tuple_(statement.excluded.email, statement.excluded.name)
        ),
    )
    version = session.execute(statement.returning(User.version)).scalar_one_or_none()
    return None if version is None else customer_upserted(tenant, user_id, email, name, version)


def _require_tenant(session: Session, tenant: str) -> None:
    if session.get(Tenant, tenant) is None:
        raise OrderRejected(f"unknown tenant {tenant!r}")


def _state(placed: PlacedOrder) -> OrderState:
    return OrderState(
        tenant=placed.tenant,
        order_id=placed.order_id,
        customer_id=placed.customer_id,
        status=placed.status,
        currency=placed.currency,
        total=str(placed.total),
        placed_at=placed.placed_at,
        version=placed.version,
        lines=[
            OrderLineState(line.sku, line.quantity, str(line.unit_price)) for line in placed.lines
        ],
    )


def _replay(session: Session, priced: PricedOrder) -> PlacedOrder | None:
    stored = session.get(Order, (priced.request.tenant, priced.order_id))
    if stored is None:
        return None
    check_replay(stored.request_hash, priced.request, priced.order_id)
    placed = load_order(session, priced.request.tenant, priced.order_id)
    return placed.model_copy(update={"replayed": True})


def place_order(priced: PricedOrder, routes: Routes) -> Committed:
    """Place a priced order in one transaction: customer, stock, order, items, payment, outbox.

    The order id comes from the idempotency key, so a replay finds the stored order and changes
    nothing (or is refused if its request differs); a concurrent replay waits on the primary
    key, then rolls back and returns the winner's order. Stock is reserved in sku order; a line
    that would take stock below zero rejects the whole order.
    """
    request = priced.request
    tenant = check_tenant(request.tenant)
    try:
        with unit_of_work() as session:
            replayed = _replay(session, priced)
            if replayed is not None:
                return Committed(replayed, [])
            _require_tenant(session, tenant)
            customer = request.customer
            customer_event = _upsert_user(
                session, tenant, customer.customer_id, customer.email, customer.name
            )
            events = [customer_event] if customer_event else []
            placed_at = session.execute(
                upsert(Order)
                .values(
                    tenant_id=tenant,
                    order_id=priced.order_id,
                    customer_id=customer.customer_id,
                    idempotency_key=request.idempotency_key,
                    request_hash=request.fingerprint(),
                    status=PLACED,
                    currency=request.currency,
                    total=priced.total,
                    version=1,
                )
                .on_conflict_do_nothing()
                .returning(Order.placed_at)
            ).scalar_one_or_none()
            if placed_at is None:
                raise _AlreadyPlaced
            events += [
                move_stock(session, tenant, sku, -units) for sku, units in priced.reservations
            ]
            session.execute(
                insert(OrderItem),
                [
                    {
                        "tenant_id": tenant,
                        "order_id": priced.order_id,
                        "line_no": number,
                        "sku": line.sku,
                        "quantity": line.quantity,
                        "unit_price": line.unit_price,
                    }
                    for number, line in enumerate(priced.lines, start=1)
                ],
            )
            session.execute(
                insert(Payment).values(
                    tenant_id=tenant,
                    payment_id=priced.order_id,
                    order_id=priced.order_id,
                    reference=request.payment_reference,
                    amount=priced.total,
                    currency=request.currency,
                    status="authorized",
                )
            )
            placed = PlacedOrder(
                tenant=tenant,
                order_id=priced.order_id,
                customer_id=customer.customer_id,
                status=PLACED,
                currency=request.currency,
                total=priced.total,
                lines=list(priced.lines),
                placed_at=placed_at,
            )
            events.append(order_event(ORDER_PLACED, _state(placed)))
            return Committed(placed, publish(session, events, routes))
    except _AlreadyPlaced:
        with unit_of_work() as session:
            return Committed(_replay(session, priced), [])


def cancel_order(tenant: str, order_id: str, routes: Routes) -> Committed:
    """Cancel a placed order: release its stock and write the outbox events; idempotent."""
    check_tenant(tenant)
    with unit_of_work() as session:
        order = session.get(Order, (tenant, order_id), with_for_update=True)
        if order is None:
            raise OrderRejected(f"unknown order {order_id!r} of tenant {tenant!r}")
        if not check_transition(order_id, order.status, CANCELLED):
            placed = load_order(session, tenant, order_id)
            return Committed(placed.model_copy(update={"replayed": True}), [])
        order.status = CANCELLED
        order.version += 1
        order.cancelled_at = func.now()
        session.flush()
        placed = load_order(session, tenant, order_id)
        events = [
            move_stock(session, tenant, line.sku, line.quantity)
            for line in sorted(placed.lines, key=lambda line: line.sku)
        ]
        events.append(order_event(ORDER_CANCELLED, _state(placed)))
        return Committed(placed, publish(session, events, routes))


def upsert_user(profile: UserProfile, routes: Routes) -> tuple[int | None, list[int]]:
    """Create or update a user and write its outbox event: (its new version, the event ids),
    or (None, []) when nothing changed."""
    tenant = check_tenant(profile.tenant)
    with unit_of_work() as session:
        _require_tenant(session, tenant)
        event = _upsert_user(session, tenant, profile.customer_id, profile.email, profile.name)
        if event is None:
            return None, []
        return event.payload["version"], publish(session, [event], routes)
