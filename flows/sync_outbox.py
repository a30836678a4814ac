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

from domain.outbox import MAX_DELIVERY_ATTEMPTS
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
    The run reads forward from its last batch, so it tries each event once; what a store
    refused waits for the next run.
    """
    active = list(PROJECTIONS)
    delivered = dict.fromkeys(active, 0)
    refused = dict.fromkeys(active, 0)
    batches = dict.fromkeys(active, 0)
    behind: dict[str, State] = {}
    cursor = 0
    for _ in range(max_batches):
        with postgres.claim_pending(active, batch_size, after=cursor) as claim:
            states = deliver_claim(claim, retries)
        cursor = max((m.event_id for m in claim.messages), default=cursor)
        for store, state in states.items():
            if state.is_completed():
                outcome = state.result()
                delivered[store] += len(outcome.delivered)
                refused[store] += len(outcome.refused)
                batches[store] += 1
            else:
                behind[store] = state
                active.remove(store)
        if not claim.messages or not active:
            break
    _report(delivered, refused, behind)
    if any(refused.values()):
        print(
            "refused events (retried next run, dead letters after "
            f"{MAX_DELIVERY_ATTEMPTS} attempts; see 'polyflow outbox status'): "
            + ", ".join(f"{store} {count}" for store, count in refused.items() if count)
        )
    if behind:
        reasons = "; ".join(f"{store}: {state.message}" for store, state in behind.items())
        raise StoresBehind(f"outbox not delivered to {', '.join(behind)} ({reasons})")
    print(", ".join(f"{store} {count}" for store, count in delivered.items()) + " events delivered")
    return [
        Delivered(store, delivered[store], batches[store], refused[store]) for store in PROJECTIONS
    ]


def _report(delivered: dict[str, int], refused: dict[str, int], behind: dict[str, State]) -> None:
    pending = postgres.pending_deliveries(list(PROJECTIONS))
    create_table_artifact(
        key="outbox-sync",
        table=[
            {
                "store": store,
                "delivered": delivered[store],
                "refused": refused[store],
                "pending": pending[store],
                "state": behind[store].name if store in behind else "Completed",
            }
            for store in PROJECTIONS
        ],
        description="Outbox deliveries of this run and what is still pending, per store",
    )
