"""Recommendation generations in the real Neo4j: load, switch, read, prune, drop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stores import neo4j
from tests.recommendation_seed import forget

BOUGHT = [
    {
        "source": "A",
        "target": "B",
        "weight": 0.8,
        "support": 4,
        "confidence": 0.5,
        "lift": 2.0,
        "rank": 1,
    },
    {
        "source": "B",
        "target": "A",
        "weight": 0.8,
        "support": 4,
        "confidence": 1.0,
        "lift": 2.0,
        "rank": 1,
    },
    {
        "source": "A",
        "target": "C",
        "weight": 0.4,
        "support": 1,
        "confidence": 0.1,
        "lift": 1.0,
        "rank": 2,
    },
    {
        "source": "C",
        "target": "A",
        "weight": 0.4,
        "support": 1,
        "confidence": 1.0,
        "lift": 1.0,
        "rank": 1,
    },
]
SIMILAR = [
    {"source": "A", "target": "D", "score": 0.5},
    {"source": "B", "target": "D", "score": 0.25},
]


@pytest.fixture(autouse=True)
def clean(tenant: str) -> Iterator[None]:
    neo4j.bootstrap_recommendations()
    yield
    forget(tenant)
    forget(f"{tenant}-b")


def load(tenant: str, generation: str, top_n: int = 10) -> None:
    neo4j.begin_generation(tenant, generation, top_n)
    neo4j.load_bought_together(tenant, generation, BOUGHT)
    neo4j.load_similar(tenant, generation, SIMILAR)
    neo4j.load_seeds(tenant, generation, [{"customer_id": "ann", "skus": ["A"]}])


def test_a_loaded_generation_is_invisible_until_switched(tenant: str) -> None:
    load(tenant, "g1")
    assert neo4j.bought_together(tenant, "A") == (None, [])
    assert neo4j.switch_generation(tenant, "g1", "sum") is None
    assert neo4j.bought_together(tenant, "A") == ("g1", [("B", 0.8), ("C", 0.4)])
    assert neo4j.similar_products(tenant, "A") == ("g1", [("D", 0.5)])
    # ann bought A: B (0.8), D (0.5), C (0.4); never A itself
    assert neo4j.recommended_for(tenant, "ann") == ("g1", [("B", 0.8), ("D", 0.5), ("C", 0.4)])
    assert neo4j.recommended_for(tenant, "nobody") == ("g1", [])


def test_a_repeated_load_starts_from_a_cleared_generation(tenant: str) -> None:
    load(tenant, "g1")
    neo4j.clear_generation(tenant, "g1")
    assert neo4j.generation_bought_together(tenant, "g1") == []
    assert neo4j.recommendation_generations(tenant) == [{"generation": "g1", "state": "loading"}]
    load(tenant, "g1")
    assert len(neo4j.generation_bought_together(tenant, "g1")) == 4
    assert len(neo4j.generation_similar(tenant, "g1")) == 2
    assert neo4j.generation_seeds(tenant, "g1") == [{"customer_id": "ann", "skus": ["A"]}]


def test_the_pointer_limits_lists_to_the_generation_top_n(tenant: str) -> None:
    load(tenant, "g1", top_n=1)
    neo4j.switch_generation(tenant, "g1", "sum")
    assert neo4j.bought_together(tenant, "A") == ("g1", [("B", 0.8)])
    assert neo4j.recommended_for(tenant, "ann") == ("g1", [("B", 0.8)])


def test_switching_retires_the_previous_generation_and_prune_keeps_k(tenant: str) -> None:
    for generation in ("g1", "g2", "g3"):
        load(tenant, generation)
        neo4j.switch_generation(tenant, generation, "sum")
    load(tenant, "g4")  # still loading: an orphan once another run prunes
    assert neo4j.active_generation(tenant) == "g3"

    assert neo4j.prune_generations(tenant, keep=2, current="g5") == ["g4", "g1"]
    assert neo4j.recommendation_generations(tenant) == [
        {"generation": "g3", "state": "active"},
        {"generation": "g2", "state": "retired"},
    ]
    assert neo4j.generation_bought_together(tenant, "g1") == []
    assert neo4j.generation_seeds(tenant, "g4") == []


def test_the_active_generation_is_never_dropped(tenant: str) -> None:
    load(tenant, "g1")
    neo4j.switch_generation(tenant, "g1", "sum")
    with pytest.raises(ValueError, match="active"):
        neo4j.drop_generation(tenant, "g1")
    assert neo4j.prune_generations(tenant, keep=1, current="g1") == []


def test_dropping_deletes_in_batches_and_leaves_other_tenants_alone(
    tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = f"{tenant}-b"
    load(tenant, "g1")
    load(other, "g1")
    monkeypatch.setattr(neo4j, "DELETE_BATCH", 1)
    neo4j.drop_generation(tenant, "g1")
    assert neo4j.generation_bought_together(tenant, "g1") == []
    assert neo4j.recommendation_generations(tenant) == []
    assert len(neo4j.generation_bought_together(other, "g1")) == 4
    assert neo4j.recommendation_generations(other) == [{"generation": "g1", "state": "loading"}]


def test_switching_a_generation_never_begun_fails(tenant: str) -> None:
    with pytest.raises(LookupError, match="never begun"):
        neo4j.switch_generation(tenant, "nope", "sum")
    assert neo4j.active_generation(tenant) is None


def test_cypher_looking_skus_are_parameters(tenant: str) -> None:
    sneaky = "x'}) MATCH (n) DETACH DELETE n //"
    load(tenant, "g1")
    neo4j.switch_generation(tenant, "g1", "sum")
    assert neo4j.bought_together(tenant, sneaky) == ("g1", [])
    assert neo4j.recommended_for(tenant, sneaky) == ("g1", [])
    assert len(neo4j.generation_bought_together(tenant, "g1")) == 4
