"""Catalog ingestion tasks: validate a file into spooled chunks, then write each chunk to a store.

Tasks take a chunk *file* rather than thousands of records as arguments: a retry re-reads
exactly the chunk it failed on, and Prefect never hashes or stores large inputs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task

from domain.catalog import ProductRecord, Reject
from expectations.catalog_files import read_catalog
from stores import elasticsearch, mongodb, neo4j, postgres, redis
from tasks.outbox import ROUTES
from tasks.retry import STORE_TASK

FIRST_REJECTS = 20


@dataclass
class ValidatedFile:
    """What the validation pass found; the valid rows wait in `chunk_files` for publishing."""

    source: str
    modified_at: datetime | None = None
    """When the file was last written: what its stock figures were counted at, by default."""
    rows_read: int = 0
    rejected: int = 0
    first_rejects: list[dict[str, Any]] = field(default_factory=list)
    chunk_files: list[str] = field(default_factory=list)

    @property
    def reject_share(self) -> float:
        return self.rejected / self.rows_read if self.rows_read else 0.0


@dataclass(frozen=True)
class ChunkUpsert:
    inserted: int
    updated: int
    unchanged: int
    versions: dict[str, int]
    seconds: dict[str, float]


def _load(chunk_file: str) -> list[ProductRecord]:
    return json.loads(Path(chunk_file).read_text())


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


@task(name="validate-catalog-file", **STORE_TASK)
def validate_catalog_file(
    path: str,
    tenant: str,
    chunk_size: int,
    file_format: str | None,
    spool: str,
    on_chunk: Callable[[ValidatedFile], None] | None = None,
) -> ValidatedFile:
    """Stream the file once: quarantine the bad rows, spool the good ones chunk by chunk.

    Nothing but the quarantine is written here, so the reject-share gate can still stop the run
    before any product is published. Memory stays bounded by one chunk.
    """
    result = ValidatedFile(source=str(path))
    mongodb.supersede_rejects(tenant, str(path))
    for number, chunk in enumerate(read_catalog(path, tenant, chunk_size, file_format)):
        result.rows_read += chunk.rows_read
        result.rejected += len(chunk.rejects)
        mongodb.quarantine([reject.model_dump(mode="json") for reject in chunk.rejects])
        room = FIRST_REJECTS - len(result.first_rejects)
        result.first_rejects += [_reject_row(r) for r in chunk.rejects[:room]]
        if chunk.products:
            chunk_file = Path(spool) / f"chunk-{number:06d}.json"
            chunk_file.write_text(json.dumps(chunk.products))
            result.chunk_files.append(str(chunk_file))
        if on_chunk:
            on_chunk(result)
    result.modified_at = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    return result


def _reject_row(reject: Reject) -> dict[str, Any]:
    return {"line": reject.line, "fields": ", ".join(reject.fields), "reason": reject.reason}


@task(name="upsert-catalog-chunk", **STORE_TASK)
def upsert_catalog_chunk(tenant: str, chunk_file: str, stock_as_of: datetime) -> ChunkUpsert:
    """MongoDB (the catalog's source of truth), and PostgreSQL inventory for the rows with stock,
    counted at `stock_as_of`: orders placed since then are taken off the figure."""
    products = _load(chunk_file)
    started = time.perf_counter()
    counts = mongodb.upsert_products(tenant, products)
    mongo_seconds = time.perf_counter() - started
    stock = {p["sku"]: p["stock"] for p in products if p.get("stock") is not None}
    pg_seconds = _timed(lambda: postgres.set_inventory(tenant, stock, ROUTES, stock_as_of))
    return ChunkUpsert(
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        versions=counts.versions,
        seconds={"mongodb": mongo_seconds, "postgres": pg_seconds},
    )


@task(name="index-catalog-chunk", **STORE_TASK)
def index_catalog_chunk(tenant: str, chunk_file: str, versions: dict[str, int]) -> float:
    """Elasticsearch: bulk-index into the tenant's write index, guarded by the catalog version."""
    products = [{**p, "version": versions[p["sku"]]} for p in _load(chunk_file)]
    return _timed(
        lambda: elasticsearch.bulk_index(tenant, elasticsearch.write_alias(tenant), products)
    )


@task(name="cache-catalog-chunk", **STORE_TASK)
def cache_catalog_chunk(tenant: str, chunk_file: str) -> float:
    """Redis: refresh the product cache entries (with their TTL) in one pipeline."""
    products = _load(chunk_file)
    return _timed(lambda: redis.cache_products(tenant, {p["sku"]: p for p in products}))


@task(name="graph-catalog-chunk", **STORE_TASK)
def graph_catalog_chunk(tenant: str, chunk_file: str) -> float:
    """Neo4j: Product and Category nodes and IN_CATEGORY edges in one UNWIND query."""
    rows = [neo4j.product_row(product) for product in _load(chunk_file)]
    return _timed(lambda: neo4j.merge_products(tenant, rows))


@task(name="prepare-catalog-stores", **STORE_TASK)
def prepare_catalog_stores(tenant: str) -> None:
    """The tenant row inventory refers to, and the tenant's search index with its aliases."""
    postgres.ensure_tenant(tenant)
    elasticsearch.ensure_tenant_index(tenant)
