"""`rebuild-recommendations`: recompute a tenant's recommendations from the sources of truth, load
them into Neo4j as a new generation, gate it, switch readers to it, publish top-N lists to Redis.

Per tenant, two steps (plain functions over tasks, not subflows: a subflow would send its
parameters, frames of 10^5 edges, to the API). Build reads the tenant's order lines in the window
(PostgreSQL, placed orders only) and its catalog (MongoDB), computes co-purchase, similarity and
"for you" (`domain.recommendations`), and loads a new generation into Neo4j that no reader sees:
readers follow the tenant's pointer, which still names the active generation. A build that fails
drops what it loaded; one that is killed leaves a generation marked loading, which the next run
prunes. Publish gates the loaded generation against the computation; only if
the gate passes does it write the lists under the new generation's Redis keys, move the Neo4j
pointer (one write transaction) and the Redis pointer (one SET), expire the old Redis keys and
prune generations beyond the last `keep`. A failed gate drops the new generation, leaves both
pointers where they were, publishes an artifact saying what differed and fails the run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import perf_counter

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.utilities.annotations import quote

from domain.recommendations import (
    ComputedGeneration,
    RebuildParameters,
    generation_id,
    window_start,
)
from expectations.recommendations import RecommendationGate
from flows.artifacts import artifact_key
from tasks.recommendations import (
    catalog_tenants,
    compute,
    drop_generation,
    gate,
    load_generation,
    prune_generations,
    publish_lists,
    read_catalog,
    read_order_lines,
    switch_generation,
    switch_lists,
)


class UnknownTenant(LookupError):
    """Nothing to recommend from: the tenant has neither a catalog nor orders in the window."""


class RecommendationGateFailed(RuntimeError):
    """The loaded generation is not what was computed: it was dropped, nothing switched."""


@dataclass(frozen=True)
class BuiltGeneration:
    """A computed generation, loaded into Neo4j (unless a dry run), not yet visible."""

    computed: ComputedGeneration
    generation: str | None
    edges_loaded: int
    timings: dict[str, float]


@dataclass(frozen=True)
class RecommendationSummary:
    """What a rebuild did for one tenant; also published as the run's artifact."""

    tenant: str
    generation: str | None
    previous: str | None
    checksum: str
    orders: int
    pairs_computed: int
    bought_edges: int
    similar_edges: int
    edges_loaded: int
    products_covered: int
    customers_covered: int
    redis_keys: int
    gate: str
    dry_run: bool
    timings: dict[str, float]
    pruned: list[str] = field(default_factory=list)


def _since(clock: float) -> float:
    return round(perf_counter() - clock, 3)


def build_recommendations(
    tenant: str, lookback_days: int, top_n: int, min_support: int, dry_run: bool = False
) -> BuiltGeneration:
    """Read, compute and (unless a dry run) load a new generation that no reader sees yet."""
    clock = perf_counter()
    now = datetime.now(UTC)
    lines = read_order_lines.submit(tenant, window_start(now, lookback_days))
    products = read_catalog.submit(tenant)
    lines, products = lines.result(), products.result()
    if lines.empty and not products:
        raise UnknownTenant(
            f"tenant {tenant!r} has no catalog and no orders in the last {lookback_days} days: "
            "nothing to recommend from (is the tenant id right?)"
        )
    timings = {"read": _since(clock)}
    clock = perf_counter()
    computed = compute(tenant, quote(lines), quote(products), top_n, min_support)
    timings["compute"] = _since(clock)
    if dry_run:
        return BuiltGeneration(computed, None, 0, timings)
    clock = perf_counter()
    generation = generation_id(now, uuid.uuid4().hex[:8])
    try:
        loaded = load_generation(quote(computed), generation)
    except BaseException:
        drop_generation(tenant, generation, return_state=True)
        raise
    timings["load"] = _since(clock)
    print(f"loaded generation {generation} of {tenant}: {loaded} edges")
    return BuiltGeneration(computed, generation, loaded, timings)


def publish_recommendations(
    built: BuiltGeneration, keep: int
) -> tuple[str | None, int, list[str], dict[str, float], RecommendationGate]:
    """Gate a loaded generation; if it passes, publish its lists and switch readers to it.

    Returns the replaced generation, the Redis keys written, the pruned generations, timings
    and the gate's verdict."""
    computed, generation = built.computed, built.generation
    assert generation is not None, "a dry run has nothing to publish"
    tenant = computed.tenant
    clock = perf_counter()
    verdict = gate(quote(computed), generation)
    timings = {"gate": _since(clock)}
    if not verdict.passed:
        dropped = drop_generation(tenant, generation, return_state=True).is_completed()
        _publish_gate_failure(tenant, generation, verdict, dropped)
        raise RecommendationGateFailed(
            f"recommendation gate failed for tenant {tenant!r}, generation {generation}: "
            f"{'; '.join(verdict.failures)}; the active generation and Redis are unchanged"
        )
    clock = perf_counter()
    keys = publish_lists(quote(computed), generation)
    timings["publish_redis"] = _since(clock)
    clock = perf_counter()
    previous = switch_generation(tenant, generation, computed.checksum)
    switch_lists(tenant, generation)
    timings["switch"] = _since(clock)
    clock = perf_counter()
    pruned = prune_generations(tenant, keep, generation)
    timings["prune"] = _since(clock)
    print(f"{generation} is active for {tenant} (was {previous or 'none'}); pruned {len(pruned)}")
    return previous, keys, pruned, timings, verdict


def _publish_gate_failure(
    tenant: str, generation: str, verdict: RecommendationGate, dropped: bool
) -> None:
    rows = "\n".join(
        f"| {kind} | {verdict.computed[kind].count} | {verdict.loaded[kind].count} | "
        f"`{verdict.computed[kind].checksum[:16]}` | `{verdict.loaded[kind].checksum[:16]}` |"
        for kind in verdict.computed
    )
    reasons = "\n".join(f"- {reason}" for reason in verdict.failures)
    differed = "\n".join(f"- {line}" for line in verdict.differences) or "- (no edge differs)"
    outcome = "was dropped" if dropped else "could **not** be dropped (the next run prunes it)"
    create_markdown_artifact(
        key=artifact_key("recommendation-gate", tenant),
        markdown=(
            f"# Recommendation gate failed for tenant `{tenant}`\n\n{reasons}\n\n"
            "| kind | computed | loaded | computed checksum | loaded checksum |\n"
            f"|---|---|---|---|---|\n{rows}\n\n## What differed\n\n{differed}\n\n"
            f"Generation `{generation}` {outcome}; the active generation and the Redis lists "
            "are the ones from before the run.\n"
        ),
        description=f"Why the recommendation rebuild of {tenant} was not switched",
    )


def rebuild_tenant(tenant: str, parameters: RebuildParameters) -> RecommendationSummary:
    """Build, then (unless a dry run) publish one tenant's generation."""
    clock = perf_counter()
    built = build_recommendations(
        tenant,
        parameters.lookback_days,
        parameters.top_n,
        parameters.min_support,
        parameters.dry_run,
    )
    computed = built.computed
    previous, keys, pruned, timings, gate_result = None, 0, [], {}, "not run (dry run)"
    if built.generation is not None:
        previous, keys, pruned, timings, verdict = publish_recommendations(built, parameters.keep)
        gate_result = "passed" if verdict.passed else "failed"
    summary = RecommendationSummary(
        tenant=tenant,
        generation=built.generation,
        previous=previous,
        checksum=computed.checksum,
        orders=computed.orders,
        pairs_computed=computed.pairs,
        bought_edges=len(computed.bought),
        similar_edges=len(computed.similar),
        edges_loaded=built.edges_loaded,
        products_covered=sum(
            1
            for sku in computed.catalog
            if computed.lists["bought"].get(sku) or computed.lists["similar"].get(sku)
        ),
        customers_covered=computed.customers,
        redis_keys=keys,
        gate=gate_result,
        dry_run=parameters.dry_run,
        timings={**built.timings, **timings, "total": _since(clock)},
        pruned=pruned,
    )
    _publish_summary(summary)
    return summary


@flow(name="rebuild-recommendations", log_prints=True)
def rebuild_recommendations(
    parameters: RebuildParameters = RebuildParameters(),  # noqa: B008 (frozen model)
) -> list[RecommendationSummary]:
    """Rebuild one tenant's recommendations, or every tenant's with a catalog. With every tenant,
    one that fails does not stop the others; the run fails at the end naming them."""
    tenants = [parameters.tenant] if parameters.tenant else catalog_tenants()
    summaries, failures = [], []
    for tenant in tenants:
        try:
            summaries.append(rebuild_tenant(tenant, parameters))
        except (UnknownTenant, RecommendationGateFailed) as error:
            if parameters.tenant:
                raise
            failures.append(f"{tenant}: {error}")
    if failures:
        raise RuntimeError(f"{len(failures)} tenant(s) failed: {' | '.join(failures)}")
    return summaries


def _publish_summary(summary: RecommendationSummary) -> None:
    facts = {k: v for k, v in summary.__dict__.items() if k not in ("timings", "pruned")}
    rows = [{"item": key, "value": str(value if value is not None else "-")}
            for key, value in facts.items()]  # fmt: skip
    rows.append({"item": "pruned", "value": ", ".join(summary.pruned) or "-"})
    rows += [{"item": f"{step} (s)", "value": str(s)} for step, s in summary.timings.items()]
    create_table_artifact(
        key=artifact_key("recommendations", summary.tenant),
        table=rows,
        description=f"Recommendation rebuild of {summary.tenant}",
    )
    print(
        f"recommendations of {summary.tenant}: generation {summary.generation or '(dry run)'}, "
        f"{summary.pairs_computed} pairs, {summary.edges_loaded} edges, "
        f"{summary.customers_covered} customers, gate {summary.gate}, "
        f"{summary.timings['total']} s"
    )
