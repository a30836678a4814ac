"""Catalog ingestion benchmark: the flow against a raw driver baseline and a naive reference.

Generates a deterministic synthetic catalog of N products and, on the same stores, measures:
1. the `ingest-catalog` flow end to end (validation, MongoDB, Elasticsearch, Redis, Neo4j), in a
   child process so its peak resident memory is its own;
2. a raw baseline: the same rows written with the drivers' bulk APIs directly, no Prefect, no GX;
3. a naive reference on a small sample: one Prefect task per product.

Prints products/second for each and the ratio flow/raw. Run it with the stack up:
    .venv/bin/python -m bench.catalog --products 200000
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import resource
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import typer
from prefect import flow, task
from rich.console import Console
from rich.table import Table

from polyflow.catalog_files import read_catalog
from stores import elasticsearch, mongodb, neo4j, postgres, redis

console = Console()
CATEGORIES = [f"dept-{d}/aisle-{a}" for d in range(20) for a in range(10)]


def write_catalog(path: Path, products: int) -> None:
    """N products, the same for the same N: sku, text, a category of 200, price, tags, stock."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["sku", "name", "description", "category", "price", "currency", "tags", "stock"]
        )
        for i in range(products):
            writer.writerow(
                [
                    f"BENCH-{i:08d}",
                    f"Product {i} {('kettle', 'teapot', 'mug', 'pan', 'knife')[i % 5]}",
                    f"Synthetic product number {i} for the ingestion benchmark.",
                    CATEGORIES[i % len(CATEGORIES)],
                    f"{1 + (i % 9973) / 100:.2f}",
                    "EUR",
                    "bench|synthetic",
                    i % 50,
                ]
            )


def _run_flow(path: str, tenant: str, chunk_size: int, result: multiprocessing.Queue) -> None:
    from flows.ingest_catalog import ingest_catalog

    started = time.perf_counter()
    summary = ingest_catalog(path, tenant, chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.put((seconds, peak_mb, summary.inserted, summary.store_seconds))


def measure_flow(path: Path, tenant: str, chunk_size: int) -> tuple[float, float, int, dict]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_run_flow, args=(str(path), tenant, chunk_size, queue))
    child.start()
    outcome = queue.get()
    child.join()
    return outcome


def write_raw(tenant: str, products: list[dict]) -> dict[str, float]:
    """The same writes as the flow's, straight through the store helpers' bulk calls."""
    seconds: dict[str, float] = {}
    for store, write in (
        ("mongodb", lambda: mongodb.upsert_products(tenant, products)),
        ("postgres", lambda: postgres.set_inventory(
            tenant, {p["sku"]: p["stock"] for p in products})),
        ("elasticsearch", lambda: elasticsearch.bulk_index(
            tenant, elasticsearch.write_alias(tenant), products)),
        ("redis", lambda: redis.cache_products(tenant, {p["sku"]: p for p in products})),
        ("neo4j", lambda: neo4j.merge_products(tenant, [
            {"sku": p["sku"], "name": p["name"], "price": float(p["price"]),
             "currency": p["currency"], "category": p["category"]} for p in products])),
    ):  # fmt: skip
        started = time.perf_counter()
        write()
        seconds[store] = seconds.get(store, 0.0) + time.perf_counter() - started
    return seconds


def measure_raw(path: Path, tenant: str, chunk_size: int) -> tuple[float, dict[str, float]]:
    postgres.ensure_tenant(tenant)
    elasticsearch.ensure_tenant_index(tenant)
    totals: dict[str, float] = {}
    started = time.perf_counter()
    for chunk in read_catalog(path, tenant, chunk_size):
        for store, seconds in write_raw(tenant, chunk.products).items():
            totals[store] = totals.get(store, 0.0) + seconds
    return time.perf_counter() - started, totals


@task(name="naive-one-product")
def _one_product(tenant: str, product: dict) -> None:
    write_raw(tenant, [product])


@flow(name="naive-catalog")
def _naive(tenant: str, products: list[dict]) -> None:
    for product in products:
        _one_product(tenant, product)


def measure_naive(path: Path, tenant: str, sample: int) -> float:
    postgres.ensure_tenant(tenant)
    elasticsearch.ensure_tenant_index(tenant)
    products = next(iter(read_catalog(path, tenant, sample))).products
    started = time.perf_counter()
    _naive(tenant, json.loads(json.dumps(products)))
    return time.perf_counter() - started


def main(
    products: int = typer.Option(200_000, help="Catalog size N."),
    chunk_size: int = typer.Option(10_000, help="Rows per chunk, for the flow and the baseline."),
    naive_sample: int = typer.Option(200, help="Products in the one-task-per-product run."),
) -> None:
    run = uuid.uuid4().hex[:6]
    with TemporaryDirectory(prefix="polyflow-bench-") as folder:
        path = Path(folder) / "catalog.csv"
        write_catalog(path, products)
        console.print(f"catalog: {products} products, {path.stat().st_size / 2**20:.0f} MB CSV")
        flow_s, peak_mb, inserted, flow_stores = measure_flow(path, f"bench-flow-{run}", chunk_size)
        raw_s, raw_stores = measure_raw(path, f"bench-raw-{run}", chunk_size)
        naive_s = measure_naive(path, f"bench-naive-{run}", naive_sample)

    table = Table(title=f"catalog ingestion, N = {products}")
    for column in ("run", "products", "seconds", "products/s", "notes"):
        table.add_column(column)
    stores = ", ".join(f"{k} {v:.0f}s" for k, v in flow_stores.items())
    table.add_row(
        "flow",
        str(inserted),
        f"{flow_s:.1f}",
        f"{inserted / flow_s:,.0f}",
        f"peak RSS {peak_mb:.0f} MB; {stores}",
    )
    stores = ", ".join(f"{k} {v:.0f}s" for k, v in raw_stores.items())
    table.add_row("raw", str(products), f"{raw_s:.1f}", f"{products / raw_s:,.0f}", stores)
    table.add_row("naive", str(naive_sample), f"{naive_s:.1f}", f"{naive_sample / naive_s:,.0f}",
                  "one Prefect task per product")  # fmt: skip
    console.print(table)
    console.print(f"ratio flow/raw: {(inserted / flow_s) / (products / raw_s):.2f}")


if __name__ == "__main__":
    typer.run(main)
