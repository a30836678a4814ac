"""Backfill partition status: which partitions of which flow a backfill ran, and how it ended.

One row per (flow, tenant, partition), whatever backfill ran it, so a re-run (or an overlapping
backfill) knows what is done. Durable, so a cancelled or killed backfill resumes where it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from domain.tenancy import check_tenant
from stores.postgres.schema import Base, unit_of_work

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"


class BackfillPartition(Base):
    __tablename__ = "backfill_partitions"

    flow: Mapped[str] = mapped_column(String(100), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    partition: Mapped[str] = mapped_column(String(20), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    backfill_run_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


@dataclass(frozen=True)
class PartitionStatus:
    flow: str
    tenant: str
    partition: str
    status: str
    flow_run_id: str | None
    backfill_run_id: str | None
    reason: str | None
    attempts: int
    updated_at: datetime


def partition_statuses(
    flow: str, tenant: str, partitions: Sequence[str] | None = None
) -> dict[str, PartitionStatus]:
    """The recorded status of a flow's partitions for a tenant (all of them by default)."""
    query = select(BackfillPartition).where(
        BackfillPartition.flow == flow, BackfillPartition.tenant_id == check_tenant(tenant)
    )
    if partitions is not None:
        query = query.where(BackfillPartition.partition.in_(list(partitions)))
    with unit_of_work() as session:
        return {
            row.partition: PartitionStatus(
                flow=row.flow,
                tenant=row.tenant_id,
                partition=row.partition,
                status=row.status,
                flow_run_id=row.flow_run_id,
                backfill_run_id=row.backfill_run_id,
                reason=row.reason,
                attempts=row.attempts,
                updated_at=row.updated_at,
            )
            for row in session.scalars(query.order_by(BackfillPartition.partition))
        }


def record_partition(
    flow: str,
    tenant: str,
    partition: str,
    status: str,
    *,
    flow_run_id: str | None = None,
    backfill_run_id: str | None = None,
    reason: str | None = None,
) -> None:
    """Upsert one partition's status; each finished run (completed or failed) counts one
    attempt, so the next run of the partition gets a new idempotency key."""
    values = {
        "flow": flow,
        "tenant_id": check_tenant(tenant),
        "partition": partition,
        "status": status,
        "flow_run_id": flow_run_id,
        "backfill_run_id": backfill_run_id,
        "reason": reason,
        "attempts": 1 if status in (COMPLETED, FAILED) else 0,
    }
    statement = insert(BackfillPartition).values(**values)
    update = {
        "status": statement.excluded.status,
        "reason": statement.excluded.reason,
        "updated_at": func.now(),
        "attempts": BackfillPartition.attempts + statement.excluded.attempts,
    }
    if flow_run_id is not None:
        update["flow_run_id"] = statement.excluded.flow_run_id
    if backfill_run_id is not None:
        update["backfill_run_id"] = statement.excluded.backfill_run_id
    with unit_of_work() as session:
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["flow", "tenant_id", "partition"], set_=update
            )
        )
