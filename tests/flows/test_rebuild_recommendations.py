"""`rebuild-recommendations` against the real PostgreSQL, MongoDB, Neo4j and Redis of the stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest
from prefect import flow
from prefect.artifacts import Artifact

from domain.recommendations import RebuildParameters
from flows.artifacts import artifact_key
from flows.rebuild_recommendations import (
    BuiltGeneration,
    RecommendationGateFailed,
    UnknownTenant,
    build_recommendations,
    publish_recommendations,
    rebuild_recommendations,
)
from stores import neo4j, recommendations, redis
from tests.recommendation_seed import ORDERS, cancel, forget, place_orders, seed_catalog

A_BOUGHT = [("B", 0.816497), ("C", 0.816497)]
WEIGHT_AB = 0.816497


@pytest.fixture(autouse=True)
def clean(tenant: str) -> Iterator[None]:
    yield
    forget(tenant)
    forget(f"{tenant}-b")


@flow
def build(tenant: str) -> BuiltGeneration:
    """The build half of a rebuild, in a flow of its own, so a test can tamper before the gate."""
    return build_recommendations(tenant, 180, 10, 1)


@flow
def publish(built: BuiltGeneration) -> None:
    publish_recommendations(built, keep=2)


def rebuild(tenant: str, **parameters: object):
    [summary] = rebuild_recommendations(RebuildParameters(tenant=tenant, **parameters))
    return summary


def bought_edges(tenant: str, generation: str) -> dict[tuple[str, str], tuple[int, float]]:
    return {
        (edge["source"], edge["target"]): (edge["support"], edge["weight"])
        for edge in neo4j.generation_bought_together(tenant, generation)
    }


def test_known_orders_give_exactly_the_expected_pairs_and_weights(tenant: str) -> None:
    seed_catalog(tenant)
    place_orders(tenant)

    summary = rebuild(tenant)

    assert summary.gate == "passed" and summary.pairs_computed == 3
    assert summary.orders == 4 and summary.customers_covered == 4
    assert bought_edges(tenant, summary.generation) == {
        ("A", "B"): (2, WEIGHT_AB),
        ("B", "A"): (2, WEIGHT_AB),
        ("A", "C"): (2, WEIGHT_AB),
        ("C", "A"): (2, WEIGHT_AB),
        ("B", "C"): (1, 0.5),
        ("C", "B"): (1, 0.5),
    }
    assert neo4j.active_generation(tenant) == summary.generation
    assert redis.recommendation_generation(tenant) == summary.generation
    answer = recommendations.for_product(tenant, "A")
    assert answer.source == "redis"
    assert answer.lists["bought"] == A_BOUGHT
    assert [sku for sku, _ in answer.lists["similar"]] == ["B", "C"]
    # GONE is in an order but not in the catalog: it has no list and is on nobody's
    assert recommendations.for_product(tenant, "GONE").lists == {"bought": [], "similar": []}
    assert recommendations.for_customer(tenant, "ann").lists == {"for-you": [("C", 1.757522)]}
    assert all("GONE" not in str(recommendations.for_customer(tenant, c).lists)
               for _, c, _ in ORDERS)  # fmt: skip
    artifact = Artifact.get(artifact_key("recommendations", tenant))
    assert artifact is not None and "pairs_computed" in str(artifact.data)
    assert "compute (s)" in str(artifact.data) and "load (s)" in str(artifact.data)
    assert_the_cypher_fallback_gives_the_same_answer(tenant, summary.generation)


def assert_the_cypher_fallback_gives_the_same_answer(tenant: str, generation: str) -> None:
    """Every list read from Redis, then again from Neo4j once the Redis lists are gone."""
    products = {sku: recommendations.for_product(tenant, sku) for sku in "ABCD"}
    customers = {c: recommendations.for_customer(tenant, c) for _, c, _ in ORDERS}
    assert {answer.source for answer in [*products.values(), *customers.values()]} == {"redis"}
    for name in redis.client().scan_iter(match=redis.key(tenant, "rec", generation, "*")):
        redis.client().delete(name)
    for sku, answer in products.items():
        fallback = recommendations.for_product(tenant, sku)
        assert fallback.source == "neo4j" and fallback.lists == answer.lists, sku
    for customer, answer in customers.items():
        fallback = recommendations.for_customer(tenant, customer)
        assert fallback.source == "neo4j" and fallback.lists == answer.lists, customer


def test_cancelled_orders_change_nothing_and_a_rerun_is_a_no_op(tenant: str) -> None:
    seed_catalog(tenant)
    place_orders(tenant)
    first = rebuild(tenant)
    lists = recommendations.for_product(tenant, "D").lists

    place_orders(tenant, [("o5", "ann", ("D", "A")), ("o6", "eve", ("D", "B"))])
    cancel(tenant, "o5")
    cancel(tenant, "o6")
    second = rebuild(tenant)

    assert second.generation != first.generation
    assert second.checksum == first.checksum
    assert recommendations.for_product(tenant, "D").lists == lists
    assert bought_edges(tenant, second.generation) == bought_edges(tenant, first.generation)
    assert recommendations.for_customer(tenant, "eve").source == "neo4j"  # not a customer
    assert recommendations.for_customer(tenant, "eve").lists == {"for-you": []}


def test_the_gate_blocks_a_corrupted_load_and_the_old_generation_stays_active(
    tenant: str,
) -> None:
    seed_catalog(tenant)
    place_orders(tenant)
    active = rebuild(tenant).generation
    place_orders(tenant, [("o7", "eve", ("B", "D"))])

    built = build(tenant)
    neo4j.driver().execute_query(
        "MATCH (:Product {tenant: $t, sku: 'A'})-[r:FREQUENTLY_BOUGHT_WITH "
        "{generation: $g}]->(:Product {sku: 'B'}) DELETE r",
        t=tenant,
        g=built.generation,
    )
    with pytest.raises(RecommendationGateFailed, match="bought count differs"):
        publish(built)

    assert neo4j.active_generation(tenant) == active
    assert redis.recommendation_generation(tenant) == active
    assert recommendations.for_product(tenant, "A").lists["bought"] == A_BOUGHT
    assert built.generation not in {g["generation"] for g in
                                    neo4j.recommendation_generations(tenant)}  # fmt: skip
    artifact = Artifact.get(artifact_key("recommendation-gate", tenant))
    assert artifact is not None
    assert "('A', 'B', 2, " in artifact.data and "computed but not loaded" in artifact.data
    assert "not in the catalog" not in artifact.data


def test_the_gate_names_a_self_edge_and_an_endpoint_outside_the_catalog(tenant: str) -> None:
    seed_catalog(tenant)
    place_orders(tenant)
    built = build(tenant)
    neo4j.driver().execute_query(
        "MATCH (a:Product {tenant: $t, sku: 'A'}) MERGE (x:Product {tenant: $t, sku: 'X'}) "
        "CREATE (a)-[:FREQUENTLY_BOUGHT_WITH {generation: $g, weight: 2.0, support: 1}]->(a) "
        "CREATE (a)-[:SIMILAR_TO {generation: $g, score: 0.5}]->(x)",
        t=tenant,
        g=built.generation,
    )
    with pytest.raises(RecommendationGateFailed) as failed:
        publish(built)
    message = str(failed.value)
    assert "self-edge" in message and "not in the catalog" in message
    assert "outside (0, 1]" in message and "no reverse" not in message
    assert neo4j.active_generation(tenant) is None


LOADER = """
import sys
from stores import neo4j
tenant, generation = sys.argv[1], sys.argv[2]
neo4j.bootstrap_recommendations()
neo4j.begin_generation(tenant, generation, 10)
neo4j.LOAD_BATCH = 1
rows = [{"source": "A", "target": "B", "weight": 0.5, "support": 1, "confidence": 0.5,
         "lift": 1.0}] * 100000
print("loading", flush=True)
neo4j.load_bought_together(tenant, generation, rows)
"""


def test_a_rebuild_killed_half_way_leaves_the_old_generation_and_the_next_run_prunes_it(
    tenant: str,
) -> None:
    seed_catalog(tenant)
    place_orders(tenant)
    active = rebuild(tenant).generation
    orphan = "20000101T000000000000Z-killed"
    loader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LOADER), tenant, orphan],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert loader.stdout is not None and loader.stdout.readline().strip() == "loading"
        deadline = time.monotonic() + 30
        while not bought_edges(tenant, orphan) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        loader.send_signal(signal.SIGKILL)
        loader.wait(timeout=10)
    assert loader.returncode == -signal.SIGKILL
    assert bought_edges(tenant, orphan), "the loader was killed before it loaded anything"

    assert neo4j.active_generation(tenant) == active
    assert recommendations.for_product(tenant, "A").lists["bought"] == A_BOUGHT
    redis.client().delete(redis.key(tenant, "rec", active, "product", "A"))
    assert neo4j.bought_together(tenant, "A") == (active, A_BOUGHT)

    summary = rebuild(tenant, keep=1)
    assert set(summary.pruned) == {orphan, active}  # keep=1: only the new one stays
    assert bought_edges(tenant, orphan) == {} and bought_edges(tenant, active) == {}
    assert neo4j.recommendation_generations(tenant) == [
        {"generation": summary.generation, "state": "active"}
    ]
    # the replaced generation's Redis keys expire; the active one's do not
    assert redis.client().ttl(redis.key(tenant, "rec", active, "product", "B")) > 0
    assert redis.client().ttl(redis.key(tenant, "rec", summary.generation, "product", "B")) == -1


def test_readers_during_a_rebuild_see_the_old_or_the_new_list_never_empty_or_mixed(
    tenant: str,
) -> None:
    seed_catalog(tenant)
    place_orders(tenant)
    rebuild(tenant)
    old = recommendations.for_product(tenant, "A").lists["bought"]
    place_orders(tenant, [(f"n{i}", "fay", ("A", "D")) for i in range(5)])
    seen: list[tuple[str, list]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(("redis", recommendations.for_product(tenant, "A").lists["bought"]))
            seen.append(("neo4j", neo4j.bought_together(tenant, "A")[1]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        rebuild(tenant)
    finally:
        stop.set()
        reader.join()
    new = recommendations.for_product(tenant, "A").lists["bought"]
    assert new != old and new[0][0] == "D"
    assert len(seen) > 10
    assert [answer for answer in seen if answer[1] not in (old, new)] == []


def test_two_tenants_stay_apart(tenant: str) -> None:
    other = f"{tenant}-b"
    seed_catalog(tenant)
    place_orders(tenant)
    seed_catalog(other, [("A", "x", (), {}), ("Z", "x", (), {})])
    place_orders(other, [("o1", "ann", ("A", "Z"))])
    theirs = rebuild(other)
    keys_before = sorted(redis.client().scan_iter(match=redis.key(other, "*")))

    mine = rebuild(tenant)

    assert neo4j.active_generation(other) == theirs.generation
    assert sorted(redis.client().scan_iter(match=redis.key(other, "*"))) == keys_before
    assert recommendations.for_product(other, "A").lists["bought"] == [("Z", 1.0)]
    assert recommendations.for_product(tenant, "A").lists["bought"] == A_BOUGHT
    assert mine.checksum != theirs.checksum
    assert all(g["generation"] != theirs.generation for g in
               neo4j.recommendation_generations(tenant))  # fmt: skip


def test_a_tenant_without_orders_gets_a_valid_empty_co_purchase_generation(tenant: str) -> None:
    seed_catalog(tenant)
    summary = rebuild(tenant)
    assert summary.gate == "passed" and summary.pairs_computed == 0
    assert summary.bought_edges == 0 and summary.customers_covered == 0
    assert neo4j.active_generation(tenant) == summary.generation
    assert recommendations.for_product(tenant, "A").lists["bought"] == []
    assert recommendations.for_product(tenant, "A").lists["similar"][0][0] == "B"


def test_an_unknown_tenant_is_a_clear_error_and_writes_nothing(tenant: str) -> None:
    with pytest.raises(UnknownTenant, match="no catalog and no orders"):
        rebuild(tenant)
    assert neo4j.recommendation_generations(tenant) == []
    assert redis.recommendation_generation(tenant) is None


def test_a_dry_run_computes_and_writes_nothing(tenant: str) -> None:
    seed_catalog(tenant)
    place_orders(tenant)
    summary = rebuild(tenant, dry_run=True)
    assert summary.pairs_computed == 3 and summary.generation is None
    assert neo4j.recommendation_generations(tenant) == []
    assert redis.recommendation_generation(tenant) is None


def test_orders_outside_the_window_do_not_count(tenant: str) -> None:
    from datetime import UTC, datetime, timedelta

    seed_catalog(tenant)
    place_orders(tenant, placed_at=datetime.now(UTC) - timedelta(days=40))
    assert rebuild(tenant, lookback_days=30, dry_run=True).pairs_computed == 0
    assert rebuild(tenant, lookback_days=60, dry_run=True).pairs_computed == 3
