"""`ingest-catalog`: a merchant's catalog file into MongoDB, then out to search, cache and graph.

1. Validate: stream the file once (GX suite per chunk); bad rows go to the quarantine with file,
   line, fields and reason; good rows are spooled chunk by chunk to a local folder.
2. Gate: if the rejected share exceeds `max_reject_share`, fail now, before anything is
   published; a markdown artifact lists the first rejects.
3. Publish each chunk: MongoDB (source of truth) and PostgreSQL inventory first, then
   Elasticsearch, Redis and Neo4j concurrently. Every write is an idempotent upsert keyed by
   (tenant, sku), so a retried chunk or a re-run of the whole file duplicates nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from tempfile import TemporaryDirectory
from typing import Any, Literal
from uuid import UUID

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
from tasks.catalog import (
    ValidatedFile,
    cache_catalog_chunk,
    graph_catalog_chunk,
    index_catalog_chunk,
    prepare_catalog_stores,
    upsert_catalog_chunk,
    validate_catalog_file,
)

Progress = Callable[[str, int, int | None], None]
PROGRESS: ContextVar[Progress | None] = ContextVar("catalog_progress", default=None)
"""Called with (phase, done, total) as the run advances; the CLI draws its progress bar from it.
A context variable rather than a flow parameter, so the flow's parameters stay serialisable."""
PIPELINE_DEPTH = 2
"""Chunks whose MongoDB upsert may run ahead of the fan-out: overlap without unbounded memory."""

DERIVED_STORES = ("elasticsearch", "redis", "neo4j")


@dataclass
class IngestSummary:
    source: str
    tenant: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    first_rejects: list[dict[str, Any]] = field(default_factory=list)
    store_seconds: dict[str, float] = field(default_factory=dict)

    def add_time(self, store: str, seconds: float) -> None:
        self.store_seconds[store] = self.store_seconds.get(store, 0.0) + seconds


def _publish_summary(summary: IngestSummary) -> None:
    create_table_artifact(
        key=artifact_key("catalog-import", summary.tenant),
        table=[
            {"what": name, "value": value}
            for name, value in (
                ("source", summary.source),
                ("tenant", summary.tenant),
                ("rows read", summary.rows_read),
                ("inserted", summary.inserted),
                ("updated", summary.updated),
                ("unchanged", summary.unchanged),
                ("rejected", summary.rejected),
                *((f"{store} seconds", round(s, 2)) for store, s in summary.store_seconds.items()),
            )
        ],
        description="ingest-catalog summary",
    )
    if summary.first_rejects:
        create_markdown_artifact(
            key=artifact_key("catalog-import-rejects", summary.tenant),
            markdown=f"# First rejected rows\n\n{reject_table(summary.first_rejects)}",
        )


@flow(name="ingest-catalog", log_prints=True)
def ingest_catalog(
    path: str,
    tenant: TenantId,
    chunk_size: int = 10_000,
    file_format: Literal["csv", "jsonl", "parquet"] | None = None,
    max_reject_share: float = 0.05,
    stock_as_of: datetime | None = None,
) -> IngestSummary:
    """Import a catalog file for one tenant; see the module docstring for the steps.

    `stock_as_of` is when the file's stock figures were counted (default: the file's
    modification time); units that orders took since then are taken off each figure.
    """
    notify = PROGRESS.get() or (lambda phase, done, total: None)
    tracker: UUID = create_progress_artifact(0.0, description=f"Importing {path}")
    with TemporaryDirectory(prefix="polyflow-catalog-") as spool:

        def validated(so_far: ValidatedFile) -> None:
            notify("validating", so_far.rows_read, None)

        checked = validate_catalog_file(
            path, tenant, chunk_size, file_format, spool, on_chunk=validated
        )
        summary = IngestSummary(
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
            kind="catalog",
            rows="rows",
            outcome="nothing was published",
        )

        prepare_catalog_stores(tenant)
        counted_at = stock_as_of or checked.modified_at
        chunks = checked.chunk_files
        upserts = [
            upsert_catalog_chunk.submit(tenant, c, counted_at) for c in chunks[:PIPELINE_DEPTH]
        ]
        for done, chunk in enumerate(chunks, start=1):
            counts = upserts.pop(0).result()
            if done - 1 + PIPELINE_DEPTH < len(chunks):
                upserts.append(
                    upsert_catalog_chunk.submit(
                        tenant, chunks[done - 1 + PIPELINE_DEPTH], counted_at
                    )
                )
            fan_out = {
                "elasticsearch": index_catalog_chunk.submit(tenant, chunk, counts.versions),
                "redis": cache_catalog_chunk.submit(tenant, chunk),
                "neo4j": graph_catalog_chunk.submit(tenant, chunk),
            }
            summary.inserted += counts.inserted
            summary.updated += counts.updated
            summary.unchanged += counts.unchanged
            for store, seconds in counts.seconds.items():
                summary.add_time(store, seconds)
            for store, future in fan_out.items():
                summary.add_time(store, future.result())
            update_progress_artifact(tracker, 100 * done / len(chunks))
            notify("publishing", done, len(chunks))
    update_progress_artifact(tracker, 100.0)
    _publish_summary(summary)
    print(
        f"{summary.source}: {summary.rows_read} rows, {summary.inserted} inserted, "
        f"{summary.updated} updated, {summary.unchanged} unchanged, {summary.rejected} rejected"
    )
    return summary
