"""`reindex-search`: rebuild a tenant's product search index from MongoDB, or bring it up to date.

A full run is two subflows. `build-search-index` loads every product into a new versioned index
that no reader sees yet. `publish-search-index` gates it against MongoDB (count and checksum);
only if the gate passes does it move the read and the write alias onto it in one atomic call,
catch up the writes ingestion sent to the old index meanwhile, and prune old versions. Readers
search through the read alias, so until then they see the old index, whole.

An incremental run indexes the products changed since the last successful run's watermark into
the current index; with no index or no watermark yet it runs a full rebuild instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Annotated, Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from domain.tenancy import TenantId
from expectations.search import GateResult
from flows.artifacts import artifact_key
from tasks.search import (
    advance_watermark,
    create_build_index,
    current_index,
    delete_index,
    finish_build,
    index_digest,
    index_product_page,
    mongodb_digest,
    prune_indices,
    read_watermark,
    refresh,
    search_gate,
    swap_aliases,
)

Mode = Literal["full", "incremental"]
Keep = Annotated[int, Field(ge=1, description="versioned indices kept, the new one included")]
BatchSize = Annotated[int, Field(ge=1, le=10_000, description="products per page and bulk")]
DEFAULT_BATCH_SIZE = 2000
CLOCK_MARGIN = timedelta(minutes=5)
"""How far back "updated since" looks beyond the time asked for. A writer stamps `updated_at`
with its own clock before its bulk write lands, so a write still in flight when a run starts can
carry an earlier stamp. Looking back further only re-sends products ES already holds at that
version, which it skips."""


class SearchGateFailed(RuntimeError):
    """The new index does not match MongoDB: it was deleted and the aliases did not move."""


@dataclass(frozen=True)
class BuiltIndex:
    """A new versioned index holding every product, not yet visible to readers."""

    index: str
    started_at: datetime
    indexed: int
    caught_up: int
    seconds: float


@dataclass(frozen=True)
class PublishedIndex:
    """A gated index behind both aliases, and what publishing it did."""

    index: str
    replaced: list[str]
    caught_up: int
    watermark: datetime
    pruned: list[str]
    timings: dict[str, float]


@dataclass(frozen=True)
class ReindexSummary:
    """What a `reindex-search` run did; also published as the run's artifact."""

    tenant: str
    requested_mode: Mode
    mode: Mode
    index: str
    indexed: int
    caught_up: int
    watermark: datetime
    timings: dict[str, float]
    old_indices: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


def _index_pages(
    tenant: str, index: str, batch_size: int, updated_since: datetime | None = None
) -> int:
    """Index products page by page in sku order; each page is one retryable task.

    Returns how many documents were written: a product the index already holds at its current
    version is read but not counted.
    """
    if updated_since is not None:
        updated_since -= CLOCK_MARGIN
    indexed = 0
    after_sku = None
    while True:
        page = index_product_page(tenant, index, after_sku, batch_size, updated_since)
        indexed += page.indexed
        if page.read < batch_size:
            return indexed
        after_sku = page.last_sku


def _since(clock: float) -> float:
    """Seconds since a `perf_counter()` reading, to the millisecond."""
    return round(perf_counter() - clock, 3)


@flow(name="build-search-index", log_prints=True)
def build_search_index(tenant: TenantId, batch_size: BatchSize = DEFAULT_BATCH_SIZE) -> BuiltIndex:
    """Load every product of the tenant into a new versioned index without aliases.

    Refresh is off while loading: one refresh at the end is cheaper than one a second. Pages
    are read in sku order, so memory holds one page. A product changed after its page was read
    is stale here, so a second pass indexes the products updated since the build started; a
    catalog that ingestion is not rewriting right now then passes the gate. A build that fails
    deletes its index.
    """
    clock = perf_counter()
    started_at = datetime.now(UTC)
    index = create_build_index(tenant)
    try:
        indexed = _index_pages(tenant, index, batch_size)
        caught_up = _index_pages(tenant, index, batch_size, updated_since=started_at)
        finish_build(index)
    except BaseException:
        delete_index(index, return_state=True)
        raise
    print(f"built {index}: {indexed} products, {caught_up} updated during the build")
    return BuiltIndex(index, started_at, indexed, caught_up, _since(clock))


@flow(name="publish-search-index", log_prints=True)
def publish_search_index(
    tenant: TenantId,
    index: str,
    built_since: datetime,
    keep: Keep = 2,
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
) -> PublishedIndex:
    """Gate a built index against MongoDB; if it passes, make it the live one.

    A failed gate publishes an artifact saying why, deletes the index, leaves both aliases where
    they were and fails the run. After the swap, products updated since `built_since` are
    indexed again: ingestion may have written them to the old index after the build read them.
    """
    clock = perf_counter()
    mongodb_side = mongodb_digest.submit(tenant)
    index_side = index_digest.submit(index)
    gate = search_gate(mongodb_side.result(), index_side.result())
    timings = {"gate": _since(clock)}
    if not gate.passed:
        deleted = delete_index(index, return_state=True).is_completed()
        _publish_gate_failure(tenant, index, gate, deleted)
        raise SearchGateFailed(
            f"search gate failed for tenant {tenant!r}, index {index}: {'; '.join(gate.failures)} "
            f"(MongoDB {gate.mongodb.count} products, index {gate.elasticsearch.count}); "
            f"the aliases did not move{'' if deleted else ' and the index could not be deleted'}"
        )
    clock = perf_counter()
    watermark = datetime.now(UTC)
    replaced = swap_aliases(tenant, index)
    caught_up = _index_pages(tenant, index, batch_size, updated_since=built_since)
    refresh(tenant)
    timings["swap_and_catch_up"] = _since(clock)
    clock = perf_counter()
    pruned = prune_indices(tenant, keep)
    timings["prune"] = _since(clock)
    print(f"{index} is live (was {', '.join(replaced) or 'none'}); pruned {len(pruned)}")
    return PublishedIndex(index, replaced, caught_up, watermark, pruned, timings)


def _publish_gate_failure(tenant: str, index: str, gate: GateResult, deleted: bool) -> None:
    rows = "\n".join(
        f"| {side} | {digest.count} | `{digest.checksum}` |"
        for side, digest in (("MongoDB", gate.mongodb), (f"`{index}`", gate.elasticsearch))
    )
    reasons = "\n".join(f"- {reason}" for reason in gate.failures)
    outcome = "was deleted" if deleted else "could **not** be deleted"
    create_markdown_artifact(
        key=artifact_key("search-gate", tenant),
        markdown=(
            f"# Search gate failed for tenant `{tenant}`\n\n{reasons}\n\n"
            f"| side | products | checksum of (sku, content_hash) |\n|---|---|---|\n{rows}\n\n"
            f"The new index {outcome}; the aliases still point where they did before the run.\n"
        ),
        description=f"Why the search reindex of {tenant} was not published",
    )


@flow(name="reindex-search", log_prints=True)
def reindex_search(
    tenant: TenantId,
    mode: Mode = "full",
    keep: Keep = 2,
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
) -> ReindexSummary:
    """Full: rebuild, gate, swap, catch up, prune. Incremental: index what changed since the
    last successful run. Either way the watermark advances only when the run succeeds.
    """
    clock = perf_counter()
    current = current_index(tenant)
    watermark = read_watermark(tenant) if mode == "incremental" else None
    if current is not None and watermark is not None:
        run_started_at = datetime.now(UTC)
        index_clock = perf_counter()
        indexed = _index_pages(tenant, current, batch_size, updated_since=watermark)
        refresh(tenant)
        advance_watermark(tenant, run_started_at)
        summary = ReindexSummary(
            tenant=tenant,
            requested_mode=mode,
            mode="incremental",
            index=current,
            indexed=indexed,
            caught_up=0,
            watermark=run_started_at,
            timings={"index": _since(index_clock), "total": _since(clock)},
        )
    else:
        if mode == "incremental":
            print(f"no {'index' if current is None else 'watermark'} yet: running a full rebuild")
        built = build_search_index(tenant, batch_size)
        published = publish_search_index(tenant, built.index, built.started_at, keep, batch_size)
        advance_watermark(tenant, published.watermark)
        summary = ReindexSummary(
            tenant=tenant,
            requested_mode=mode,
            mode="full",
            index=published.index,
            indexed=built.indexed,
            caught_up=built.caught_up + published.caught_up,
            old_indices=published.replaced,
            pruned=published.pruned,
            watermark=published.watermark,
            timings={"build": built.seconds, **published.timings, "total": _since(clock)},
        )
    _publish_summary(summary)
    return summary


def _publish_summary(summary: ReindexSummary) -> None:
    facts = asdict(summary)
    facts["old_indices"] = ", ".join(summary.old_indices) or "-"
    facts["pruned"] = ", ".join(summary.pruned) or "-"
    facts["watermark"] = summary.watermark.isoformat()
    timings = facts.pop("timings")
    rows = [{"item": key, "value": str(value)} for key, value in facts.items()]
    rows += [{"item": f"{phase} (s)", "value": str(seconds)} for phase, seconds in timings.items()]
    create_table_artifact(
        key=artifact_key("search-reindex", summary.tenant),
        table=rows,
        description=f"Search reindex of {summary.tenant} ({summary.mode})",
    )
    print(
        f"{summary.mode} reindex of {summary.tenant}: {summary.indexed} indexed, "
        f"{summary.caught_up} caught up, index {summary.index}, {summary.timings['total']} s"
    )
