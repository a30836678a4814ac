"""`place-order`, `cancel-order` and `upsert-user`: the money path, then the outbox sync.

An order is validated against the catalog (MongoDB prices and currency) before PostgreSQL is
touched, then placed in one PostgreSQL transaction with its outbox events. The derived stores
are fed by `sync-outbox`, run as a subflow right after the commit: the order reaches Redis,
Cassandra and Neo4j within the same run, without depending on an event bus or automation
service, and a sync that fails does not fail the order, which is already committed and which
the scheduled catch-up run of `sync-outbox` will deliver.
"""

from __future__ import annotations

from prefect import flow

from flows.sync_outbox import sync_outbox
from polyflow.orders import OrderRequest, PlacedOrder, UserProfile
from tasks.orders import commit_cancellation, commit_order, commit_user, price_lines


def _sync_after_commit(sync: bool) -> None:
    """One delivery attempt per store: a down store must not hold up the order's run, and the
    catch-up deployment retries what this attempt could not deliver."""
    if sync:
        state = sync_outbox(retries=0, return_state=True)
        if not state.is_completed():
            print(f"outbox sync after commit did not finish ({state.message}); the catch-up will")


@flow(name="place-order", log_prints=True)
def place_order(request: OrderRequest, sync: bool = True) -> PlacedOrder:
    """Price, place (one transaction, idempotent on the request's key), then sync the outbox."""
    placed = commit_order(request, price_lines(request))
    verb = "already placed" if placed.replayed else "placed"
    print(f"order {placed.order_id} {verb}: {placed.total} {placed.currency}")
    _sync_after_commit(sync and not placed.replayed)
    return placed


@flow(name="cancel-order", log_prints=True)
def cancel_order(tenant: str, order_id: str, sync: bool = True) -> PlacedOrder:
    """Cancel an order and release its stock; cancelling twice changes nothing."""
    cancelled = commit_cancellation(tenant, order_id)
    _sync_after_commit(sync and not cancelled.replayed)
    return cancelled


@flow(name="upsert-user", log_prints=True)
def upsert_user(profile: UserProfile, sync: bool = True) -> int | None:
    """Create or update a user; the profile reaches MongoDB, Redis and Neo4j via the outbox."""
    version = commit_user(profile)
    _sync_after_commit(sync and version is not None)
    return version
