"""Store health as Prefect tasks: one per store, so the UI shows which store is slow or down."""

from __future__ import annotations

from prefect import task

from stores.health import StoreHealth
from stores.registry import STORES


@task(name="check-store-health", task_run_name="health-{store_name}")
def check_store_health(store_name: str) -> StoreHealth:
    """Never raises: a down store is reported as unhealthy, so the others still report."""
    store = next(store for store in STORES if store.name == store_name)
    return store.health()
