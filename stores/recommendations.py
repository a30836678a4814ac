"""Reading recommendations: Redis first, the active Neo4j generation when Redis has nothing.

Both sides hold the same generation's lists: Redis the published top-N, Neo4j the edges and seeds
they were computed from, read with the parameterised queries of `stores.neo4j`. So the answer is
the same whichever side gives it; `source` says which did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stores import neo4j, redis

PRODUCT_KINDS = ("bought", "similar")
Source = Literal["redis", "neo4j", "none"]


@dataclass(frozen=True)
class Recommendations:
    """Ranked (sku, weight) lists by kind: bought/similar for a product, for-you for a customer."""

    source: Source
    generation: str | None
    lists: dict[str, list[tuple[str, float]]]


def _ranked(items: list[list[object]] | None) -> list[tuple[str, float]]:
    return [(str(sku), float(score)) for sku, score in items or []]  # type: ignore[arg-type]


def for_product(tenant: str, sku: str) -> Recommendations:
    generation, lists = redis.recommendation_lists(tenant, redis.PRODUCT_LISTS, sku)
    if lists is not None:
        return Recommendations(
            "redis", generation, {kind: _ranked(lists.get(kind)) for kind in PRODUCT_KINDS}
        )
    generation, bought = neo4j.bought_together(tenant, sku)
    _, similar = neo4j.similar_products(tenant, sku)
    return Recommendations(
        "neo4j" if generation else "none", generation, {"bought": bought, "similar": similar}
    )


def for_customer(tenant: str, customer_id: str) -> Recommendations:
    generation, ranked = redis.recommendation_lists(tenant, redis.CUSTOMER_LISTS, customer_id)
    if ranked is not None:
        return Recommendations("redis", generation, {"for-you": _ranked(ranked)})
    generation, ranked = neo4j.recommended_for(tenant, customer_id)
    return Recommendations("neo4j" if generation else "none", generation, {"for-you": ranked})
