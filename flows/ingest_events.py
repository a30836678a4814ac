"""`ingest-events`: a storefront event file (JSONL or Parquet) into Cassandra and Redis.

1. Validate: stream the file once (GX suite per chunk); bad rows go to the quarantine (MongoDB
   `import_rejects`) with file, line, fields and reason; good rows are spooled chunk by chunk.
2. Gate: if the rejected share exceeds `max_reject_share`, fail before writing any event.
3. Write each chunk: Cassandra `events_by_day` and `user_analytics` (upserts keyed by the event
   id), then Redis live counters per (type, hour) and session summaries, each event counted
   once by id. Re-ingesting the same file changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from tempfile import TemporaryDirectory
from typing import Any, Literal

from prefect import flow
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from domain.tenancy import TenantId
from flows.artifacts import artifact_key, reject_table
from flows.quarantine_gate import reject_share_gate
from tasks.analytics import store_event_chunk, validate_event_file

IN_FLIGHT = 2
"""Chunks written at once: overlap of Cassandra and Redis round trips, bounded memory."""


@dataclass
class EventsSummary:
    source: str
    tenant: str
    rows_read: int = 0
    stored: int = 0
    counted: int = 0
    rejected: int = 0
    first_rejects: list[dict[str, Any]] = field(default_factory=list)


@flow(name="ingest-events", log_prints=True)
def ingest_events(
    path: str,
    tenant: TenantId,
    chunk_size: int = 20_000,
    file_format: Literal["jsonl", "parquet"] | None = None,
    max_reject_share: float = 0.05,
) -> EventsSummary:
    """Import a storefront event file for one tenant; see the module docstring for the steps."""
    tracker = create_progress_artifact(0.0, description=f"Importing events {path}")
    with TemporaryDirectory(prefix="polyflow-events-") as spool:
        checked = validate_event_file(path, tenant, chunk_size, file_format, spool)
        summary = EventsSummary(
            source=checked.source,
            tenant=tenant,
            rows_read=checked.rows_read,
            rejected=checked.rejected,
            first_rejects=checked.first_rejects,
        )
        reject_share_gate(
            checked,
            tenant,
            max_reject_share,
            kind="events",
            rows="events",
            outcome="nothing was stored",
        )
        chunks = checked.chunk_files
        futures = [store_event_chunk.submit(tenant, c) for c in chunks[:IN_FLIGHT]]
        for done in range(1, len(chunks) + 1):
            stored, counted = futures.pop(0).result()
            if done - 1 + IN_FLIGHT < len(chunks):
                futures.append(store_event_chunk.submit(tenant, chunks[done - 1 + IN_FLIGHT]))
            summary.stored += stored
            summary.counted += counted
            update_progress_artifact(tracker, 100 * done / len(chunks))
    update_progress_artifact(tracker, 100.0)
    create_table_artifact(
        key=artifact_key("events-import", tenant),
        table=[
            {"what": "source", "value": summary.source},
            {"what": "tenant", "value": tenant},
            {"what": "rows read", "value": summary.rows_read},
            {"what": "events stored", "value": summary.stored},
            {"what": "newly counted live", "value": summary.counted},
            {"what": "rejected", "value": summary.rejected},
        ],
        description="ingest-events summary",
    )
    if summary.first_rejects:
        create_markdown_artifact(
            key=artifact_key("events-import-rejects", tenant),
            markdown=f"# First rejected events\n\n{reject_table(summary.first_rejects)}",
        )
    print(
        f"{summary.source}: {summary.rows_read} rows, {summary.stored} stored, "
        f"{summary.counted} newly counted, {summary.rejected} rejected"
    )
    return summary
