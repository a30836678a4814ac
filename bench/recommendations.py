"""Recommendation rebuild benchmark: the flow against a raw baseline, on a synthetic tenant.

A deterministic tenant (seeded random numbers): P products in MongoDB (category paths, tags,
attributes), C customers and O orders in PostgreSQL with 1-6 distinct lines each, products
drawn with a Zipf-like popularity (weight 1 / rank^1.1), placed over the last 170 days, 5% of
them cancelled. Orders are written with bulk `unnest` inserts, not through `place-order`: the
benchmark is about the rebuild. Then, in one run:

1. raw: the same computation (`domain.recommendations`) and the same Neo4j and Redis writes
   (UNWIND loads, the pointer switch, prune, the Redis lists and pointer) with the drivers
   directly, no Prefect and no GX gate;
2. flow: `rebuild-recommendations` end to end in its own process (so its peak RSS is its own),
   against the Prefect server in PREFECT_API_URL;
3. reads: the p50/p95 of `recommend` for random products and customers, from Redis and from the
   Cypher queries on the active generation;
4. both generations (raw's is kept, retired, with keep=2) are read back from Neo4j: their
   bought-together edges, similar edges and seeds must be the same.

    .venv/bin/python -m bench.recommendations --products 10000 --customers 5000 --orders 100000
"""

from __future__ import annotations

import multiprocessing
import random
import resource
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import typer
from rich.console import Console
from sqlalchemy import text

from domain.recommendations import (
    BOUGHT_DIGEST,
    SEEDS_DIGEST,
    SIMILAR_DIGEST,
    RebuildParameters,
    compute_generation,
    digest,
    generation_id,
    lines_frame,
    window_start,
)
from expectations.recommendations import loaded_generation
from stores import mongodb, neo4j, postgres, recommendations, redis

console = Console(width=150)
TENANT = "bench-recommendations"
"""The only tenant the benchmark writes; it is emptied before it starts."""
LOOKBACK_DAYS = 180
TOP_N = 10
READS = 400


def _clean() -> None:
    mongodb.database()[mongodb.PRODUCTS].delete_many({"tenant": TENANT})
    with neo4j.driver().session() as session:
        # relationships first, in batches: one popular product has 10^4 of them
        session.run(
            "MATCH (n:Product {tenant: $tenant})-[r]-() CALL (r) { DELETE r } "
            "IN TRANSACTIONS OF 10000 ROWS",
            tenant=TENANT,
        ).consume()
        session.run(
            "MATCH (n) WHERE n.tenant = $tenant CALL (n) { DETACH DELETE n } "
            "IN TRANSACTIONS OF 5000 ROWS",
            tenant=TENANT,
        ).consume()
    names = list(redis.client().scan_iter(match=redis.key(TENANT, "*"), count=10_000))
    for start in range(0, len(names), 10_000):
        redis.client().delete(*names[start : start + 10_000])
    with postgres.engine().begin() as conn:
        for table in ("payments", "order_items", "orders", "users"):
            statement = text(f"DELETE FROM {table} WHERE tenant_id = :t")  # noqa: S608
            conn.execute(statement, {"t": TENANT})


def _seed(products: int, customers: int, orders: int) -> dict[str, int]:
    rng = np.random.default_rng(42)
    categories = [
        f"dept-{d}/aisle-{a}/shelf-{s}" for d in range(20) for a in range(5) for s in range(4)
    ]
    tags = [f"tag-{t}" for t in range(300)]
    colors = ["red", "blue", "green", "black", "white", "grey", "navy", "pink"]
    skus = [f"REC-{i:06d}" for i in range(products)]
    documents = []
    for i, sku in enumerate(skus):
        documents.append(
            {
                "tenant": TENANT,
                "sku": sku,
                "name": f"Product {i}",
                "price": "10",
                "currency": "EUR",
                "category": categories[int(rng.integers(len(categories)))],
                "tags": sorted({tags[int(t)] for t in rng.integers(300, size=rng.integers(1, 4))}),
                "attributes": {"color": colors[int(rng.integers(len(colors)))],
                               "size": int(rng.integers(1, 6))},
                "content_hash": uuid.UUID(int=i).hex,
                "version": 1,
                "updated_at": datetime.now(UTC),
            }
        )  # fmt: skip
    mongodb.database()[mongodb.PRODUCTS].insert_many(documents, ordered=False)
    popularity = 1 / np.arange(1, products + 1) ** 1.1
    popularity /= popularity.sum()
    rank_to_sku = rng.permutation(products)
    sizes = rng.integers(1, 7, size=orders)
    draws = rng.choice(products, size=(orders, 8), p=popularity)
    order_ids, order_customers, order_status, placed_at = [], [], [], []
    item_orders, item_lines, item_skus = [], [], []
    now = datetime.now(UTC)
    ages = rng.uniform(0, 170 * 86400, size=orders)
    who = rng.integers(customers, size=orders)
    cancelled = rng.random(orders) < 0.05
    for o in range(orders):
        order_id = f"bo-{o:07d}"
        order_ids.append(order_id)
        order_customers.append(f"cust-{who[o]:05d}")
        order_status.append("cancelled" if cancelled[o] else "placed")
        placed_at.append(now - timedelta(seconds=float(ages[o])))
        lines = list(dict.fromkeys(int(rank_to_sku[d]) for d in draws[o]))[: sizes[o]]
        for line_no, product in enumerate(lines, start=1):
            item_orders.append(order_id)
            item_lines.append(line_no)
            item_skus.append(skus[product])
    raw = postgres.engine().raw_connection()
    try:
        with raw.cursor() as cur:
            cur.execute(
                "INSERT INTO tenants (tenant_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (TENANT, TENANT),
            )
            users = [f"cust-{c:05d}" for c in range(customers)]
            cur.execute(
                "INSERT INTO users (tenant_id, user_id, email, name, version) "
                "SELECT %s, u, u || '@example.com', u, 1 FROM unnest(%s::text[]) AS u",
                (TENANT, users),
            )
            cur.execute(
                "INSERT INTO orders (tenant_id, order_id, customer_id, idempotency_key, status, "
                "currency, total, version, placed_at, cancelled_at) "
                "SELECT %s, o, c, o, s, 'EUR', 10, 1, p, "
                "CASE WHEN s = 'cancelled' THEN p END "
                "FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[]) "
                "AS x(o, c, s, p)",
                (TENANT, order_ids, order_customers, order_status, placed_at),
            )
            cur.execute(
                "INSERT INTO order_items (tenant_id, order_id, line_no, sku, quantity, unit_price) "
                "SELECT %s, o, n, s, 1, 10 FROM unnest(%s::text[], %s::int[], %s::text[]) "
                "AS x(o, n, s)",
                (TENANT, item_orders, item_lines, item_skus),
            )
        raw.commit()
    finally:
        raw.close()
    neo4j.bootstrap_recommendations()
    rows = [{"sku": sku, "name": sku, "price": 10.0, "currency": "EUR", "category": None}
            for sku in skus]  # fmt: skip
    for start in range(0, len(rows), 5000):
        neo4j.merge_products(TENANT, rows[start : start + 5000])
    return {"products": products, "customers": customers, "orders": orders,
            "lines": len(item_skus), "cancelled": int(cancelled.sum())}  # fmt: skip


def measure_raw() -> tuple[float, str, dict[str, float]]:
    """The same reads, computation and writes as the flow, with the drivers directly."""
    steps: dict[str, float] = {}
    clock = time.perf_counter()
    now = datetime.now(UTC)
    lines = lines_frame(postgres.order_lines(TENANT, window_start(now, LOOKBACK_DAYS)))
    products = mongodb.catalog_features(TENANT)
    steps["read"] = time.perf_counter() - clock
    mark = time.perf_counter()
    computed = compute_generation(TENANT, lines, products, TOP_N, 1)
    steps["compute"] = time.perf_counter() - mark
    mark = time.perf_counter()
    generation = generation_id(now, uuid.uuid4().hex[:8])
    neo4j.begin_generation(TENANT, generation, TOP_N)
    neo4j.clear_generation(TENANT, generation)
    neo4j.load_bought_together(TENANT, generation, computed.bought.to_dict("records"))
    neo4j.load_similar(TENANT, generation, computed.similar.to_dict("records"))
    pairs = zip(computed.seeds["customer_id"], computed.seeds["skus"], strict=True)
    seeds = [{"customer_id": c, "skus": list(s)} for c, s in pairs]
    neo4j.load_seeds(TENANT, generation, seeds)
    steps["load"] = time.perf_counter() - mark
    mark = time.perf_counter()
    lists = computed.lists
    redis.publish_recommendations(
        TENANT,
        generation,
        {sku: {"bought": b, "similar": lists["similar"].get(sku, [])}
         for sku, b in lists["bought"].items()},
        lists["for-you"],
    )  # fmt: skip
    neo4j.switch_generation(TENANT, generation, computed.checksum)
    redis.switch_recommendations(TENANT, generation)
    neo4j.prune_generations(TENANT, 2, generation)
    steps["publish"] = time.perf_counter() - mark
    return time.perf_counter() - clock, generation, steps


def _run_flow(result: multiprocessing.Queue) -> None:
    from flows.rebuild_recommendations import rebuild_recommendations

    clock = time.perf_counter()
    [summary] = rebuild_recommendations(RebuildParameters(tenant=TENANT, top_n=TOP_N, keep=2))
    seconds = time.perf_counter() - clock
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.put((seconds, summary.generation, summary.timings, peak_mb, summary.pairs_computed,
                summary.edges_loaded))  # fmt: skip


def measure_flow() -> tuple[float, str, dict[str, float], float, int, int]:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    child = context.Process(target=_run_flow, args=(result,))
    child.start()
    measured = result.get(timeout=1800)
    child.join()
    return measured


def _percentiles(samples: list[float]) -> str:
    p50, p95 = np.percentile(np.array(samples) * 1000, [50, 95])
    return f"p50 {p50:.2f} ms, p95 {p95:.2f} ms"


def measure_reads(products: int, customers: int) -> dict[str, list[float]]:
    rng = random.Random(7)  # noqa: S311 (a reproducible sample, not a secret)
    skus = [f"REC-{rng.randrange(products):06d}" for _ in range(READS)]
    people = [f"cust-{rng.randrange(customers):05d}" for _ in range(READS)]
    timings: dict[str, list[float]] = {k: [] for k in
                                        ("redis product", "neo4j product", "redis customer",
                                         "neo4j customer")}  # fmt: skip
    mismatched = 0
    for sku, person in zip(skus, people, strict=True):
        clock = time.perf_counter()
        cached = recommendations.for_product(TENANT, sku)
        timings["redis product"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        graph = {"bought": neo4j.bought_together(TENANT, sku)[1],
                 "similar": neo4j.similar_products(TENANT, sku)[1]}  # fmt: skip
        timings["neo4j product"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        cached_person = recommendations.for_customer(TENANT, person)
        timings["redis customer"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        graph_person = neo4j.recommended_for(TENANT, person)[1]
        timings["neo4j customer"].append(time.perf_counter() - clock)
        mismatched += cached.lists != graph or cached_person.lists["for-you"] != graph_person
    console.print(f"redis and neo4j answers differ for {mismatched} of {READS} reads")
    return timings


def _generation_digests(generation: str) -> tuple[Any, ...]:
    loaded = loaded_generation(
        *(neo4j.generation_columns(TENANT, generation, kind) for kind in ("bought", "similar",
                                                                          "seeds"))
    )  # fmt: skip
    return (
        digest(loaded.bought, BOUGHT_DIGEST),
        digest(loaded.similar, SIMILAR_DIGEST),
        digest(loaded.seeds, SEEDS_DIGEST),
    )


def main(
    products: int = typer.Option(10_000, min=10),
    customers: int = typer.Option(5_000, min=1),
    orders: int = typer.Option(100_000, min=1),
) -> None:
    console.print(f"[bold]seeding[/bold] tenant {TENANT}")
    clock = time.perf_counter()
    _clean()
    seeded = _seed(products, customers, orders)
    console.print(f"seeded {seeded} in {time.perf_counter() - clock:.1f} s")

    raw_s, raw_generation, raw_steps = measure_raw()
    console.print(
        f"raw:  {raw_s:.1f} s " + ", ".join(f"{k} {v:.1f} s" for k, v in raw_steps.items())
    )
    flow_s, flow_generation, flow_steps, peak_mb, pairs, edges = measure_flow()
    console.print(
        f"flow: {flow_s:.1f} s " + ", ".join(f"{k} {v:.1f} s" for k, v in flow_steps.items())
    )
    console.print(f"pairs computed {pairs:,}, edges loaded {edges:,}")
    console.print(f"flow peak RSS: {peak_mb:.0f} MB")

    same = _generation_digests(raw_generation) == _generation_digests(flow_generation)
    console.print(f"same edges in both generations: {'yes' if same else 'NO'}")
    for what, samples in measure_reads(products, customers).items():
        console.print(f"read {what}: {_percentiles(samples)}")
    console.print(f"ratio flow/raw: {raw_s / flow_s:.2f}")
    _clean()


if __name__ == "__main__":
    typer.run(main)
