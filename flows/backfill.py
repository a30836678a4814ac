"""`backfill`: replay a flow over a date range, one partition per child flow run.

Prefect's scheduler never creates past runs, so this is the backfill Airflow and Dagster users
expect, startable from the UI form, the API or `polyflow backfill run`:

- the range (days, both included) is cut into hour or day partitions; a reversed, empty or
  future range, an unknown flow or a partition size the flow does not support is refused;
- each partition is one flow run of the flow's `partition` deployment, visible in the UI, with
  an idempotency key from (flow, tenant, partition, attempt): starting the same backfill twice
  never runs a partition twice at the same time;
- at most `max_concurrent` partitions run at once: a Prefect global concurrency limit per
  (flow, tenant), whose slots are leases (a dead backfill's slots free themselves);
- status per partition is kept in PostgreSQL (`backfill_partitions`), so a cancelled or dead
  backfill started again does only what is left; `reprocess` chooses what counts as left:
  `missing` (never completed nor failed), `failed` (also the failed ones), `all`;
- `dry_run` lists the partitions and what would happen to each;
- a progress artifact while it runs, a summary table at the end.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from prefect import flow, runtime
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.client.orchestration import get_client
from prefect.futures import PrefectConcurrentFuture
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from domain.analytics import BACKFILL_FLOWS, Partition, check_backfill
from domain.tenancy import TenantId
from stores import postgres
from tasks.analytics import PartitionOutcome, run_partition

PARTITION_DEPLOYMENT = "partition"
BACKFILL_DEPLOYMENT = "backfill/api"
MAX_CONCURRENT = 32
FLOWS = BACKFILL_FLOWS


class BackfillFailed(RuntimeError):
    """Some partitions failed; they are recorded with their reasons."""


def check_request(
    flow_name: str, start: date, end: date, partition_size: str, reprocess: str = "missing"
) -> list[Partition]:
    """The partitions of a valid request; BackfillError naming what is wrong otherwise."""
    today = datetime.now(UTC).date()
    return check_backfill(flow_name, start, end, partition_size, reprocess, today)


def _action(status: postgres.PartitionStatus | None, reprocess: str) -> str:
    """run, or why the partition is skipped."""
    if status is None or status.status in (postgres.RUNNING, postgres.PENDING):
        return "run"
    if status.status == postgres.COMPLETED:
        return "run" if reprocess == "all" else "skip: completed"
    return "run" if reprocess in ("failed", "all") else "skip: failed before (reprocess=failed)"


@dataclass
class BackfillSummary:
    flow_name: str
    tenant: str
    partitions: int
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    planned: list[dict[str, str]] = field(default_factory=list)


def _parameters(flow_name: str, tenant: str, partition: Partition) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "start": partition.start.isoformat(),
        "end": partition.end.isoformat(),
    }


@flow(
    name="backfill",
    log_prints=True,
    task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENT),
)
def backfill(
    flow_name: Annotated[str, Field(description="rollup-analytics or replay-analytics")],
    tenant: TenantId,
    start: date,
    end: date,
    partition_size: Literal["hour", "day"] = "day",
    max_concurrent: Annotated[int, Field(ge=1, le=MAX_CONCURRENT)] = 4,
    reprocess: Literal["missing", "failed", "all"] = "missing",
    dry_run: bool = False,
) -> BackfillSummary:
    """Run `flow_name` for every partition of start..end (days, both included)."""
    chosen = check_request(flow_name, start, end, partition_size, reprocess)
    statuses = postgres.partition_statuses(flow_name, tenant, [p.key for p in chosen])
    summary = BackfillSummary(flow_name, tenant, len(chosen))
    todo: list[Partition] = []
    for partition in chosen:
        action = _action(statuses.get(partition.key), reprocess)
        summary.planned.append({"partition": partition.key, "action": action})
        if action == "run":
            todo.append(partition)
        else:
            summary.skipped.append(partition.key)
    if dry_run:
        create_table_artifact(
            key="backfill-plan", table=summary.planned, description="backfill dry run"
        )
        print(f"dry run: {len(todo)} of {len(chosen)} partitions would run")
        return summary

    limit_name = f"backfill:{flow_name}:{tenant}"
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(limit_name, max_concurrent)
    run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
    deployment = f"{flow_name}/{PARTITION_DEPLOYMENT}"
    tracker = create_progress_artifact(0.0, description=f"backfill {flow_name} {tenant}")

    keys: dict[Any, str] = {}

    def submit(partition: Partition) -> PrefectConcurrentFuture[PartitionOutcome]:
        future = run_partition.submit(
            flow_name,
            deployment,
            tenant,
            partition.key,
            _parameters(flow_name, tenant, partition),
            statuses[partition.key].attempts if partition.key in statuses else 0,
            limit_name,
            run_id,
        )
        keys[future.task_run_id] = partition.key
        return future

    # The limit is the global concurrency limit; submitting only as many partitions as it
    # admits just spares the waiting ones from polling it for a slot.
    waiting = list(todo)
    in_flight = [submit(waiting.pop(0)) for _ in range(min(max_concurrent, len(waiting)))]
    finished = 0
    while in_flight:
        wait([f.wrapped_future for f in in_flight], return_when=FIRST_COMPLETED)
        future = next(f for f in in_flight if f.wrapped_future.done())
        in_flight.remove(future)
        if waiting:
            in_flight.append(submit(waiting.pop(0)))
        finished += 1
        outcome = future.result(raise_on_failure=False)
        if not isinstance(outcome, PartitionOutcome):
            key = keys[future.task_run_id]
            reason = f"{type(outcome).__name__}: {outcome}"
            postgres.record_partition(flow_name, tenant, key, postgres.FAILED, reason=reason)
            summary.failed[key] = reason
            continue
        if outcome.status == postgres.COMPLETED:
            summary.done.append(outcome.partition)
        else:
            summary.failed[outcome.partition] = outcome.reason or "failed"
        update_progress_artifact(tracker, 100 * finished / len(todo))
    update_progress_artifact(tracker, 100.0)
    create_table_artifact(
        key="backfill-summary",
        table=[{"partition": p.key, "result": _result(p.key, summary)} for p in chosen],
        description=f"backfill {flow_name} {tenant}: {len(summary.done)} done, "
        f"{len(summary.skipped)} skipped, {len(summary.failed)} failed",
    )
    print(
        f"{flow_name} {tenant}: {len(summary.done)} done, {len(summary.skipped)} skipped, "
        f"{len(summary.failed)} failed"
    )
    if summary.failed:
        key, reason = next(iter(summary.failed.items()))
        raise BackfillFailed(
            f"{len(summary.failed)} of {len(chosen)} partitions failed, first {key}: {reason}"
        )
    return summary


def _result(key: str, summary: BackfillSummary) -> str:
    if key in summary.done:
        return "done"
    if key in summary.failed:
        return f"failed: {summary.failed[key]}"
    return next(p["action"] for p in summary.planned if p["partition"] == key)
