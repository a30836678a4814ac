"""The steps of a recommendation rebuild as Prefect tasks: thin wrappers over stores/, the domain
computation and the gate.

Every store step retries on transient errors and is safe to repeat: loads MERGE onto the same
generation's edges, the switch names the same generation again, drops ignore what is gone. None
is cached: each reads or changes live state.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pandas as pd
from prefect import task

from domain.recommendations import ComputedGeneration, compute_generation, lines_frame
from expectations.recommendations import (
    RecommendationGate,
    check_recommendation_gate,
    loaded_generation,
)
from stores import mongodb, neo4j, postgres, redis
from tasks.retry import COMPUTE_TASK, STORE_TASK


@task(name="recommendation-tenants", **STORE_TASK)
def catalog_tenants() -> list[str]:
    return mongodb.catalog_tenants()


@task(name="read-order-lines", **STORE_TASK)
def read_order_lines(tenant: str, since: datetime) -> pd.DataFrame:
    return lines_frame(postgres.order_lines(tenant, since))


@task(name="read-catalog-features", **STORE_TASK)
def read_catalog(tenant: str) -> list[dict[str, Any]]:
    return mongodb.catalog_features(tenant)


@task(name="compute-recommendations", **COMPUTE_TASK)
def compute(
    tenant: str,
    lines: pd.DataFrame,
    products: list[dict[str, Any]],
    top_n: int,
    min_support: int,
) -> ComputedGeneration:
    """Not retried: the same inputs give the same generation."""
    return compute_generation(tenant, lines, products, top_n, min_support)


@task(name="load-recommendation-generation", **STORE_TASK)
def load_generation(computed: ComputedGeneration, generation: str) -> int:
    """Register the generation as loading, then load its edges and seeds in UNWIND batches;
    returns the edges loaded. A retry first clears what the failed attempt loaded."""
    tenant = computed.tenant
    neo4j.bootstrap_recommendations()
    neo4j.begin_generation(tenant, generation, computed.top_n)
    neo4j.clear_generation(tenant, generation)
    loaded = neo4j.load_bought_together(tenant, generation, computed.bought.to_dict("records"))
    loaded += neo4j.load_similar(tenant, generation, computed.similar.to_dict("records"))
    seeds = computed.seeds
    rows = [{"customer_id": c, "skus": list(skus)}
            for c, skus in zip(seeds["customer_id"], seeds["skus"], strict=True)]  # fmt: skip
    neo4j.load_seeds(tenant, generation, rows)
    return loaded


@task(name="recommendation-gate", **STORE_TASK)
def gate(computed: ComputedGeneration, generation: str) -> RecommendationGate:
    """Read back what Neo4j holds of the generation and validate it against the computation;
    a retry reads again, and the same contents give the same verdict."""
    tenant = computed.tenant
    with ThreadPoolExecutor(3) as pool:
        bought, similar, seeds = pool.map(
            lambda kind: neo4j.generation_columns(tenant, generation, kind),
            ("bought", "similar", "seeds"),
        )
    return check_recommendation_gate(computed, loaded_generation(bought, similar, seeds))


@task(name="drop-recommendation-generation", **STORE_TASK)
def drop_generation(tenant: str, generation: str) -> None:
    neo4j.drop_generation(tenant, generation)


@task(name="publish-recommendation-lists", **STORE_TASK)
def publish_lists(computed: ComputedGeneration, generation: str) -> int:
    lists = computed.lists
    products = {
        sku: {"bought": bought, "similar": lists["similar"].get(sku, [])}
        for sku, bought in lists["bought"].items()
    }
    return redis.publish_recommendations(computed.tenant, generation, products, lists["for-you"])


@task(name="switch-recommendation-generation", **STORE_TASK)
def switch_generation(tenant: str, generation: str, checksum: str) -> str | None:
    return neo4j.switch_generation(tenant, generation, checksum)


@task(name="switch-recommendation-lists", **STORE_TASK)
def switch_lists(tenant: str, generation: str) -> str | None:
    return redis.switch_recommendations(tenant, generation)


@task(name="prune-recommendation-generations", **STORE_TASK)
def prune_generations(tenant: str, keep: int, current: str) -> list[str]:
    return neo4j.prune_generations(tenant, keep, current)
