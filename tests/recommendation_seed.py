"""Seeding and clean-up for the recommendation tests: orders straight into PostgreSQL (the real
tables, bulk inserts), a catalog into MongoDB, and removal of a tenant's recommendation state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from hashlib import sha256
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.dialects.postgresql import insert as upsert

from stores import mongodb, neo4j, postgres, redis

CATALOG = (
    ("A", "kitchen/kettles", ("red",), {"volume": 1.5}),
    ("B", "kitchen/kettles", ("steel",), {"volume": 1.5}),
    ("C", "kitchen/teapots", ("red",), {}),
    ("D", "garden", (), {}),
)
ORDERS = (
    ("o1", "ann", ("A", "B")),
    ("o2", "bo", ("A", "B", "C")),
    ("o3", "cy", ("A", "C", "GONE")),
    ("o4", "dee", ("D",)),
)
"""Worked out by hand in tests/domain/test_recommendations.py; GONE is not in the catalog."""


def product(sku: str, category: str, tags: Sequence[str], attributes: dict[str, Any]) -> dict:
    content = {
        "sku": sku,
        "name": f"Product {sku}",
        "price": "10",
        "currency": "EUR",
        "category": category,
        "tags": list(tags),
        "attributes": attributes,
    }
    digest = sha256(repr(sorted(content.items())).encode()).hexdigest()
    return {**content, "content_hash": digest}


def seed_catalog(tenant: str, catalog: Sequence[tuple] = CATALOG) -> None:
    mongodb.upsert_products(tenant, [product(*row) for row in catalog])


def place_orders(
    tenant: str,
    orders: Sequence[tuple[str, str, Sequence[str]]] = ORDERS,
    placed_at: datetime | None = None,
) -> None:
    """Insert placed orders with their lines (and tenant and customers) in one transaction."""
    placed_at = placed_at or datetime.now(UTC) - timedelta(days=1)
    customers = sorted({customer for _, customer, _ in orders})
    with postgres.unit_of_work() as session:
        session.execute(
            upsert(postgres.Tenant).values(tenant_id=tenant, name=tenant).on_conflict_do_nothing()
        )
        session.execute(
            upsert(postgres.User)
            .values(
                [
                    {"tenant_id": tenant, "user_id": c, "email": f"{c}@x.org", "name": c}
                    for c in customers
                ]
            )
            .on_conflict_do_nothing()
        )
        session.execute(
            insert(postgres.Order),
            [
                {
                    "tenant_id": tenant,
                    "order_id": order_id,
                    "customer_id": customer,
                    "idempotency_key": order_id,
                    "status": "placed",
                    "currency": "EUR",
                    "total": Decimal(10) * len(skus),
                    "placed_at": placed_at,
                }
                for order_id, customer, skus in orders
            ],
        )
        session.execute(
            insert(postgres.OrderItem),
            [
                {
                    "tenant_id": tenant,
                    "order_id": order_id,
                    "line_no": line_no,
                    "sku": sku,
                    "quantity": 1,
                    "unit_price": Decimal(10),
                }
                for order_id, _, skus in orders
                for line_no, sku in enumerate(skus, start=1)
            ],
        )


def cancel(tenant: str, order_id: str) -> None:
    with postgres.unit_of_work() as session:
        session.execute(
            update(postgres.Order)
            .where(postgres.Order.tenant_id == tenant, postgres.Order.order_id == order_id)
            .values(status="cancelled", cancelled_at=datetime.now(UTC))
        )


def forget(tenant: str) -> None:
    """Remove a tenant's catalog, graph and Redis keys (PostgreSQL rows are keyed by tenant and
    harmless; FerretDB scans a tenant's products, so those must not pile up)."""
    mongodb.database()[mongodb.PRODUCTS].delete_many({"tenant": tenant})
    neo4j.driver().execute_query(
        "MATCH (n) WHERE n.tenant = $tenant AND (n:Product OR n:Customer OR n:CustomerSeeds OR "
        "n:RecommendationGeneration OR n:RecommendationPointer) DETACH DELETE n",
        tenant=tenant,
    )
    names = list(redis.client().scan_iter(match=redis.key(tenant, "*"), count=5000))
    if names:
        redis.client().delete(*names)
