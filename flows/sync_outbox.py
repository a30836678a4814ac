"""`sync-outbox`: deliver PostgreSQL's outbox to Redis, Cassandra, Neo4j and MongoDB.

Each batch of pending events is read once for all stores, then delivered to every store by its
own task, concurrently. A store that fails (after its retries) keeps its events pending and
drops out of this run: the other stores go on draining, and the next run (the catch-up
schedule, or the next order's) sends the down store everything it missed.
"""

from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.states import State
from pydantic import Field

from stores import postgres
from tasks.outbox import PROJECTIONS, Delivered, deliver_claim
from tasks.retry import TRANSIENT_RETRIES

BatchSize = Annotated[int, Field(ge=1, le=5000, description="events per store write")]
MaxBatches = Annotated[int, Field(ge=1, description="batches per run")]
Retries = Annotated[int, Field(ge=0, le=10, description="retries of a store's delivery")]


class StoresBehind(RuntimeError):
    """Some stores could not take their events; they stay pending for the next run."""


@flow(name="sync-outbox", log_prints=True)
def sync_outbox(
    batch_size: BatchSize = 2000,
    max_batches: MaxBatches = 1000,
    retries: Retries = TRANSIENT_RETRIES["retries"],
) -> list[Delivered]:
    """Drain the outbox into every derived store; fail naming the stores left behind.

    Transient store errors are retried with backoff and jitter `retries` times per batch.
    """
    active = list(PROJECTIONS)
    delivered = dict.fromkeys(active, 0)
    batches = dict.fromkeys(active, 0)
    behind: dict[str, State] = {}
    for _ in range(max_batches):
        with postgres.claim_pending(active, batch_size * len(active)) as claim:
            states = deliver_claim(claim, retries)
        for store, state in states.items():
            if state.is_completed():
                delivered[store] += state.result()
                batches[store] += 1
            else:
                behind[store] = state
                active.remove(store)
        if not claim.messages or not active:
            break
    _report(delivered, behind)
    if behind:
        reasons = "; ".join(f"{store}: {state.message}" for store, state in behind.items())
        raise StoresBehind(f"outbox not delivered to {', '.join(behind)} ({reasons})")
    print(", ".join(f"{store} {count}" for store, count in delivered.items()) + " events delivered")
    return [Delivered(store, delivered[store], batches[store]) for store in PROJECTIONS]


def _report(delivered: dict[str, int], behind: dict[str, State]) -> None:
    pending = postgres.pending_deliveries(list(PROJECTIONS))
    create_table_artifact(
        key="outbox-sync",
        table=[
            {
                "store": store,
                "delivered": delivered[store],
                "pending": pending[store],
                "state": behind[store].name if store in behind else "Completed",
            }
            for store in PROJECTIONS
        ],
        description="Outbox deliveries of this run and what is still pending, per store",
    )
