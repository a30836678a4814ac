"""Order and user tasks: catalog pricing and the PostgreSQL transactions of the money path.

Only transient store errors are retried; `OrderRejected` (unknown sku, stock, currency, ...)
fails at once, and since each transaction is all-or-nothing it left no trace.
"""

from __future__ import annotations

from decimal import Decimal

from prefect import task
from prefect.cache_policies import NONE

from polyflow.orders import OrderRejected, OrderRequest, PlacedOrder, UserProfile
from stores import mongodb, postgres
from tasks.retry import TRANSIENT_RETRIES

ORDER_TASK = {**TRANSIENT_RETRIES, "cache_policy": NONE}


@task(name="price-order-lines", **ORDER_TASK)
def price_lines(request: OrderRequest) -> dict[str, Decimal]:
    """Unit prices from the catalog at placement time. Unknown skus, and lines whose catalog
    currency is not the order's, reject the order before anything is written."""
    skus = [line.sku for line in request.lines]
    products = mongodb.find_products(request.tenant, skus)
    unknown = [sku for sku in skus if sku not in products]
    if unknown:
        raise OrderRejected(f"unknown sku(s) for tenant {request.tenant!r}: {', '.join(unknown)}")
    other = [
        f"{sku} is in {products[sku]['currency']}"
        for sku in skus
        if products[sku]["currency"] != request.currency
    ]
    if other:
        raise OrderRejected(f"order currency is {request.currency} but {', '.join(other)}")
    return {sku: Decimal(str(products[sku]["price"])) for sku in skus}


@task(name="commit-order", **ORDER_TASK)
def commit_order(request: OrderRequest, unit_prices: dict[str, Decimal]) -> PlacedOrder:
    return postgres.place_order(request, unit_prices)


@task(name="commit-cancellation", **ORDER_TASK)
def commit_cancellation(tenant: str, order_id: str) -> PlacedOrder:
    return postgres.cancel_order(tenant, order_id)


@task(name="commit-user", **ORDER_TASK)
def commit_user(profile: UserProfile) -> int | None:
    return postgres.upsert_user(profile)
