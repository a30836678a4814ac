"""`sync-outbox`: deliver PostgreSQL's outbox to Redis, Cassandra, Neo4j and MongoDB.

Each store is drained by its own task with its own delivery record, so a store that is down
fails only its task: the others still deliver, and the next run (right after the next order, or
the catch-up schedule) sends the down store everything it missed.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import Field

from stores.postgres import pending_deliveries
from tasks.outbox import PROJECTIONS, Delivered, deliver
from tasks.retry import TRANSIENT_RETRIES

BatchSize = Annotated[int, Field(ge=1, le=5000, description="events per store write")]
MaxBatches = Annotated[int, Field(ge=1, description="batches per store and run")]
Retries = Annotated[int, Field(ge=0, le=10, description="retries of a store's delivery")]


class StoresBehind(RuntimeError):
    """Some stores could not take their events; they stay pending for the next run."""


@flow(name="sync-outbox", log_prints=True)
def sync_outbox(
    batch_size: BatchSize = 2000,
    max_batches: MaxBatches = 1000,
    retries: Retries = TRANSIENT_RETRIES["retries"],
) -> list[Delivered]:
    """Drain the outbox into every derived store concurrently; fail naming the stores behind.

    Transient store errors are retried with backoff and jitter `retries` times per store.
    """
    delivery = deliver.with_options(retries=retries)
    futures = {store: delivery.submit(store, batch_size, max_batches) for store in PROJECTIONS}
    states = {store: future.wait() or future.state for store, future in futures.items()}
    delivered = [state.result() for state in states.values() if state.is_completed()]
    behind = {store: state for store, state in states.items() if not state.is_completed()}
    pending = pending_deliveries(list(PROJECTIONS))
    create_table_artifact(
        key="outbox-sync",
        table=[
            {
                "store": store,
                "delivered": next((d.events for d in delivered if d.store == store), 0),
                "pending": pending[store],
                "state": states[store].name,
            }
            for store in PROJECTIONS
        ],
        description="Outbox deliveries of this run and what is still pending, per store",
    )
    if behind:
        reasons = "; ".join(f"{store}: {state.message}" for store, state in behind.items())
        raise StoresBehind(f"outbox not delivered to {', '.join(behind)} ({reasons})")
    print(", ".join(f"{d.store} {d.events}" for d in delivered) + " events delivered")
    return delivered
