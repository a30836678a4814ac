"""PostgreSQL schema, engine and transactions: typed SQLAlchemy 2 models, one pooled engine.

Money columns are unconstrained NUMERIC: an amount keeps exactly the decimals its currency has
(JPY 1200, EUR 36.00, KWD 1.250), as `domain.money` quantised it, and a CHECK bounds it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from domain.money import MAX_AMOUNT
from domain.settings import Settings, public_address, settings
from stores import clients
from stores.health import StoreHealth, measure

STORE = "postgres"
_AMOUNT_RANGE = f"BETWEEN 0 AND {MAX_AMOUNT}"


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
        CheckConstraint(f"total {_AMOUNT_RANGE}", name="orders_total_in_range"),
        Index("orders_placed_at", "tenant_id", "placed_at"),
        Index("orders_cancelled_at", "tenant_id", "cancelled_at"),
    )

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.tenant_id"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric)
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.order_id"]),
        CheckConstraint("quantity > 0", name="order_items_positive_quantity"),
        CheckConstraint(f"unit_price {_AMOUNT_RANGE}", name="order_items_price_in_range"),
    )

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "order_id"], ["orders.tenant_id", "orders.order_id"]),
        CheckConstraint(f"amount {_AMOUNT_RANGE}", name="payments_amount_in_range"),
    )

    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric)
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
    """One row per (event, subscribing store), written with the event and stamped when the store
    has it: a down store delays only its own rows. A row the store keeps refusing counts its
    attempts and last error, and after `MAX_ATTEMPTS` is dead: out of the queue until replayed.
    The partial index holds just the live pending rows in event order, so reading the next batch
    for all stores at once costs the batch, not the outbox's history."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (
        Index(
            "outbox_deliveries_live",
            "event_id",
            "store",
            postgresql_where=text("delivered_at IS NULL AND dead_at IS NULL"),
        ),
    )

    event_id: Mapped[int] = mapped_column(ForeignKey("outbox.event_id"), primary_key=True)
    store: Mapped[str] = mapped_column(String(20), primary_key=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


MIGRATIONS = (
    "ALTER TABLE orders ADD COLUMN IF NOT EXISTS request_hash varchar(64)",
    "ALTER TABLE orders ADD COLUMN IF NOT EXISTS cancelled_at timestamptz",
    "ALTER TABLE outbox_deliveries ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0",
    "ALTER TABLE outbox_deliveries ADD COLUMN IF NOT EXISTS last_error text",
    "ALTER TABLE outbox_deliveries ADD COLUMN IF NOT EXISTS dead_at timestamptz",
    "ALTER TABLE orders ALTER COLUMN total TYPE numeric",
    "ALTER TABLE order_items ALTER COLUMN unit_price TYPE numeric",
    "ALTER TABLE payments ALTER COLUMN amount TYPE numeric",
    "DROP INDEX IF EXISTS outbox_deliveries_pending",
    "CREATE INDEX IF NOT EXISTS orders_placed_at ON orders (tenant_id, placed_at)",
    "CREATE INDEX IF NOT EXISTS orders_cancelled_at ON orders (tenant_id, cancelled_at)",
    "DROP INDEX IF EXISTS outbox_deliveries_pending_events",
    "CREATE INDEX IF NOT EXISTS outbox_deliveries_live ON outbox_deliveries "
    "(event_id, store) WHERE delivered_at IS NULL AND dead_at IS NULL",
)
"""What a database bootstrapped by an earlier version lacks; each statement is a no-op on a
current one (dropping a NUMERIC scale needs no table rewrite)."""
ADDED_COLUMNS = 5
"""The first statements add columns, which the indexes created with the tables may use."""


def _connect(config: Settings) -> Engine:
    # psycopg 3 whatever the scheme says: "postgresql://" alone would pick psycopg2.
    url = make_url(config.postgres_url.reveal()).set(drivername="postgresql+psycopg")
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(1, round(config.connect_timeout)),
            # Bounded statements and lock waits: a wedged server or a held lock fails the call.
            "options": f"-c statement_timeout={round(config.call_timeout * 1000)} "
            f"-c lock_timeout={round(config.call_timeout * 250)}",
        },
    )


def engine() -> Engine:
    """The process-wide pooled engine for the configured URL (see `stores.clients`)."""
    return clients.shared(STORE, _connect, Engine.dispose)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with sessionmaker(engine(), expire_on_commit=False).begin() as session:
        yield session


def close() -> None:
    clients.close(STORE)


def bootstrap() -> None:
    """Create missing tables and constraints and bring older ones up to date; idempotent."""
    with engine().begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('polyflow:bootstrap'))"))
        exists = conn.execute(text("SELECT to_regclass('orders') IS NOT NULL")).scalar_one()
        if exists:
            for statement in MIGRATIONS[:ADDED_COLUMNS]:
                conn.execute(text(statement))
        Base.metadata.create_all(conn, checkfirst=True)
        for statement in MIGRATIONS[ADDED_COLUMNS:]:
            conn.execute(text(statement))


def health() -> StoreHealth:
    def check() -> tuple[str, str]:
        with engine().connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one().split(" ")[0]
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        return version, f"{size / 2**20:.1f} MB"

    return measure(STORE, public_address(settings().postgres_url), check)
