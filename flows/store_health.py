"""`store-health`: ping and size every store, publish a table artifact, fail if one is down."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from stores.health import StoreHealth
from stores.registry import STORES
from tasks.health import check_store_health


class UnhealthyStores(RuntimeError):
    """One or more stores did not answer; the message names them and why."""


@flow(name="store-health", log_prints=True)
def store_health() -> list[StoreHealth]:
    futures = [check_store_health.submit(store.name) for store in STORES]
    reports = [future.result() for future in futures]
    create_table_artifact(
        key="store-health",
        table=[
            {
                "store": r.store,
                "address": r.address,
                "healthy": r.healthy,
                "version": r.version,
                "size": r.size,
                "latency_ms": round(r.latency_ms, 1),
                "error": r.error,
            }
            for r in reports
        ],
        description="Reachability, version and size of every store",
    )
    down = [r for r in reports if not r.healthy]
    if down:
        raise UnhealthyStores("; ".join(f"{r.store} ({r.address}): {r.error}" for r in down))
    return reports
