"""PostgreSQL: the source of truth for tenants, users, orders, payments, inventory and the outbox.

Typed SQLAlchemy 2 models, one pooled engine per process, and bulk upserts
(`INSERT ... ON CONFLICT DO UPDATE`) keyed by natural ids that always include the tenant.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from polyflow.settings import public_address, settings
from stores.health import StoreHealth, measure
from stores.tenancy import check_tenant

STORE = "postgres"


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "users"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Inventory(Base):
    """Stock per sku. The CHECK is the last line of defence against overselling."""

    __tablename__ = "inventory"
    __table_args__ = (CheckConstraint("on_hand >= 0", name="inventory_never_negative"),)

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="orders_idempotency_key"),
        ForeignKeyConstraint(["tenant_id", "customer_id"], ["users.tenant_id", "users.user_id"]),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.order_id"]),
        CheckConstraint("quantity > 0", name="order_items_positive_quantity"),
    )

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(14, 2))


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.order_id"]),
    )

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))


class OutboxEvent(Base):
    """Events written in the same transaction as the change they describe (transactional outbox)."""

    __tablename__ = "outbox"

    event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"), index=True)
    aggregate_type: Mapped[str] = mapped_column(String(40))
    aggregate_id: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboxDelivery(Base):
    """One row per (event, derived store) once delivered: a down store delays only its own rows."""

    __tablename__ = "outbox_deliveries"

    event_id: Mapped[int] = mapped_column(ForeignKey("outbox.event_id"), primary_key=True)
    store: Mapped[str] = mapped_column(String(20), primary_key=True)
    delivered_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


@cache
def engine() -> Engine:
    """The process-wide pooled engine."""
    config = settings()
    return create_engine(
        config.postgres_url.get_secret_value(),
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, round(config.connect_timeout))},
    )


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with sessionmaker(engine(), expire_on_commit=False).begin() as session:
        yield session


def close() -> None:
    if engine.cache_info().currsize:
        engine().dispose()
        engine.cache_clear()


def bootstrap() -> None:
    """Create missing tables and constraints; existing ones are left as they are."""
    Base.metadata.create_all(engine(), checkfirst=True)


def health() -> StoreHealth:
    def check() -> tuple[str, str]:
        with engine().connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one().split(" ")[0]
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        return version, f"{size / 2**20:.1f} MB"

    return measure(STORE, public_address(settings().postgres_url), check)


def upsert_tenants(tenants: Mapping[str, str]) -> None:
    """Create or rename tenants, keyed by tenant id."""
    rows = [{"tenant_id": check_tenant(t), "name": name} for t, name in tenants.items()]
    if not rows:
        return
    statement = insert(Tenant).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[Tenant.tenant_id], set_={"name": statement.excluded.name}
    )
    with unit_of_work() as session:
        session.execute(statement)


def ensure_tenant(tenant: str) -> None:
    """Create the tenant if it does not exist yet; an existing tenant is left as it is."""
    statement = insert(Tenant).values(tenant_id=check_tenant(tenant), name=tenant)
    with unit_of_work() as session:
        session.execute(statement.on_conflict_do_nothing(index_elements=[Tenant.tenant_id]))


def set_inventory(tenant: str, stock: Mapping[str, int]) -> None:
    """Set absolute stock levels for many skus in one statement; unchanged levels stay untouched."""
    check_tenant(tenant)
    rows = [{"tenant_id": tenant, "sku": sku, "on_hand": qty} for sku, qty in stock.items()]
    if not rows:
        return
    statement = insert(Inventory).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[Inventory.tenant_id, Inventory.sku],
        set_={
            "on_hand": statement.excluded.on_hand,
            "version": Inventory.version + 1,
            "updated_at": func.now(),
        },
        where=Inventory.on_hand != statement.excluded.on_hand,
    )
    with unit_of_work() as session:
        session.execute(statement)


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
