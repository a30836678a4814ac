"""The steps of a search reindex as Prefect tasks: thin wrappers over stores/ and the gate.

Every store step retries on transient errors and is safe to repeat: pages are upserts keyed by
sku, the alias swap is a no-op once done, deletes ignore a missing index. None is cached: each
reads or changes live state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prefect import task

from expectations.search import ContentDigest, GateResult, check_search_gate, content_digest
from stores import elasticsearch, mongodb
from tasks.retry import COMPUTE_TASK, STORE_TASK


@dataclass(frozen=True)
class Page:
    """One page of products: how many were read and written (a product already indexed at a newer
    version is not), and the last sku read, where the next page starts."""

    read: int
    indexed: int
    last_sku: str | None


@task(name="current-search-index", **STORE_TASK)
def current_index(tenant: str) -> str | None:
    return elasticsearch.current_index(tenant)


@task(name="create-search-index", **STORE_TASK)
def create_build_index(tenant: str) -> str:
    """A retry after a lost response leaves an unused empty index behind; pruning removes it."""
    return elasticsearch.create_build_index(tenant)


@task(name="index-product-page", task_run_name="index-{index}-after-{after_sku}", **STORE_TASK)
def index_product_page(
    tenant: str,
    index: str,
    after_sku: str | None,
    limit: int,
    updated_since: datetime | None = None,
) -> Page:
    """Read one page of products from MongoDB and bulk-index it: a retry repeats both halves."""
    products = mongodb.product_page(tenant, after_sku, limit, updated_since)
    indexed = elasticsearch.bulk_index(tenant, index, products)
    last_sku = products[-1]["sku"] if products else None
    return Page(read=len(products), indexed=indexed, last_sku=last_sku)


@task(name="finish-search-index", **STORE_TASK)
def finish_build(index: str) -> None:
    elasticsearch.finish_build(index)


@task(name="digest-mongodb-products", **STORE_TASK)
def mongodb_digest(tenant: str) -> ContentDigest:
    return content_digest(mongodb.content_hashes(tenant))


@task(name="digest-search-index", **STORE_TASK)
def index_digest(index: str) -> ContentDigest:
    return content_digest(elasticsearch.content_hashes(index))


@task(name="search-gate", **COMPUTE_TASK)
def search_gate(mongodb_side: ContentDigest, elasticsearch_side: ContentDigest) -> GateResult:
    """Not retried: the same digests give the same verdict."""
    return check_search_gate(mongodb_side, elasticsearch_side)


@task(name="swap-search-aliases", **STORE_TASK)
def swap_aliases(tenant: str, index: str) -> list[str]:
    return elasticsearch.swap_aliases(tenant, index)


@task(name="delete-search-index", **STORE_TASK)
def delete_index(index: str) -> None:
    elasticsearch.delete_index(index)


@task(name="prune-search-indices", **STORE_TASK)
def prune_indices(tenant: str, keep: int) -> list[str]:
    return elasticsearch.prune_indices(tenant, keep)


@task(name="refresh-search-index", **STORE_TASK)
def refresh(tenant: str) -> None:
    elasticsearch.refresh(tenant)


@task(name="read-search-watermark", **STORE_TASK)
def read_watermark(tenant: str) -> datetime | None:
    return mongodb.search_watermark(tenant)


@task(name="advance-search-watermark", **STORE_TASK)
def advance_watermark(tenant: str, watermark: datetime) -> None:
    mongodb.advance_search_watermark(tenant, watermark)
