"""Order, stock and user tasks: catalog pricing and the PostgreSQL transactions of the money path.

Only transient store errors are retried; `OrderRejected` (unknown sku, stock, currency, a
conflicting replay, ...) fails at once, and since each transaction is all-or-nothing it left
no trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from prefect import task

from domain.orders import CatalogPrice, OrderRequest, PricedOrder, UserProfile, price_order
from stores import mongodb, postgres
from tasks.outbox import ROUTES
from tasks.retry import STORE_TASK


@task(name="price-order", **STORE_TASK)
def price(request: OrderRequest) -> PricedOrder:
    """Price the lines from the catalog at placement time, by the domain's rules."""
    products = mongodb.find_products(request.tenant, [line.sku for line in request.lines])
    catalog = {
        sku: CatalogPrice(price=str(product["price"]), currency=product["currency"])
        for sku, product in products.items()
    }
    return price_order(request, catalog)


@task(name="commit-order", **STORE_TASK)
def commit_order(priced: PricedOrder) -> postgres.Committed:
    return postgres.place_order(priced, ROUTES)


@task(name="commit-cancellation", **STORE_TASK)
def commit_cancellation(tenant: str, order_id: str) -> postgres.Committed:
    return postgres.cancel_order(tenant, order_id, ROUTES)


@task(name="commit-user", **STORE_TASK)
def commit_user(profile: UserProfile) -> tuple[int | None, list[int]]:
    return postgres.upsert_user(profile, ROUTES)


@task(name="commit-stock-levels", **STORE_TASK)
def commit_stock_levels(
    tenant: str, levels: Mapping[str, int], as_of: datetime | None = None
) -> list[int]:
    """Absolute stock levels counted at `as_of` (see `stores.postgres.inventory`); returns the
    ids of the stock events published."""
    postgres.ensure_tenant(tenant)
    return postgres.set_inventory(tenant, levels, ROUTES, as_of)
