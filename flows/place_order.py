"""`place-order`, `cancel-order`, `upsert-user` and `set-stock`: the money path.

An order is priced from the catalog (MongoDB) by the domain's rules before PostgreSQL is
touched, then placed in one PostgreSQL transaction with its outbox events. Right after the
commit, the flow delivers exactly those events to the derived stores, one attempt per store:
the order is in Redis, Cassandra and Neo4j when the run returns, and a store that is down only
leaves its events pending for the `sync-outbox` catch-up. A delivery that fails never fails the
order, which is already committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from prefect import flow
from pydantic import Field

from domain.orders import OrderRequest, PlacedOrder, UserProfile
from domain.tenancy import TenantId
from tasks.orders import commit_cancellation, commit_order, commit_stock_levels, commit_user, price
from tasks.outbox import deliver_now

StockLevels = Annotated[
    dict[str, Annotated[int, Field(ge=0, le=2**31 - 1)]],
    Field(min_length=1, description="sku -> units available to sell"),
]


def _deliver_after_commit(event_ids: Sequence[int], sync: bool) -> None:
    if not (sync and event_ids):
        return
    behind = deliver_now(event_ids)
    if behind:
        print(f"not yet delivered to {', '.join(behind)}; the sync-outbox catch-up will")


@flow(name="place-order", log_prints=True)
def place_order(request: OrderRequest, sync: bool = True) -> PlacedOrder:
    """Price, place (one transaction, idempotent on the request's key), deliver its events."""
    committed = commit_order(price(request))
    placed = committed.order
    verb = "already placed" if placed.replayed else "placed"
    print(f"order {placed.order_id} {verb}: {placed.total} {placed.currency}")
    _deliver_after_commit(committed.event_ids, sync)
    return placed


@flow(name="cancel-order", log_prints=True)
def cancel_order(tenant: TenantId, order_id: str, sync: bool = True) -> PlacedOrder:
    """Cancel an order and release its stock; cancelling twice changes nothing."""
    committed = commit_cancellation(tenant, order_id)
    _deliver_after_commit(committed.event_ids, sync)
    return committed.order


@flow(name="upsert-user", log_prints=True)
def upsert_user(profile: UserProfile, sync: bool = True) -> int | None:
    """Create or update a user; the profile reaches MongoDB, Redis and Neo4j via the outbox."""
    version, event_ids = commit_user(profile)
    _deliver_after_commit(event_ids, sync)
    return version


@flow(name="set-stock", log_prints=True)
def set_stock(
    tenant: TenantId, levels: StockLevels, as_of: datetime | None = None, sync: bool = True
) -> int:
    """Set absolute stock levels counted at `as_of` (default now; the tenant is created if
    new); every changed level reaches Redis through the outbox. Returns how many changed."""
    event_ids = commit_stock_levels(tenant, levels, as_of)
    _deliver_after_commit(event_ids, sync)
    print(f"{len(event_ids)} of {len(levels)} stock levels changed")
    return len(event_ids)
