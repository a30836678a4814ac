"""Catalog ingestion benchmark: the flow against a raw driver baseline and a naive reference.

Generates a deterministic synthetic catalog of N products and, on the same stores, measures:
1. the `ingest-catalog` flow end to end (validation, MongoDB, PostgreSQL inventory,
   Elasticsearch, Redis, Neo4j), in a child process so its peak resident memory is its own;
2. a raw baseline: the same rows written with the drivers' bulk APIs directly (pymongo
   `insert_many`, psycopg, `helpers.bulk`, a Redis pipeline, one Neo4j `UNWIND` per chunk), no
   Prefect, no GX, the three derived stores written concurrently as the flow does;
3. a naive reference on a small sample: one Prefect task per product.

Every measurement runs in one dedicated tenant, emptied in every store before it starts (and at
the end), so runs never see each other's data. After the flow and the raw run, the tenant's
row counts and a sample of rows are read back from each store: both must have written the same.

Prints products/second for each and the ratio flow/raw. Run it with the stack up:
    .venv/bin/python -m bench.catalog --products 200000
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import queue
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import typer
from elasticsearch import helpers
from prefect import flow, task
from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError
from rich.console import Console
from rich.table import Table

from domain.catalog import canonical_row, product_record
from stores import elasticsearch, mongodb, neo4j, postgres, redis

console = Console(width=150)
CATEGORIES = [f"dept-{d}/aisle-{a}" for d in range(20) for a in range(10)]
TENANT = "bench-catalog"
"""The only tenant the benchmark writes; it is emptied before every measurement."""
MONGO_UPDATE_BATCH = 40
"""FerretDB 1.24 stalls on a bulk write of 50+ statements (README, "Limits found")."""
DELETE_BATCH = 20_000
ES_BULK_ROWS = 2000
SAMPLE_SKUS = ("BENCH-00000000", "BENCH-00000001", "BENCH-00000199", "BENCH-00001234")
UPSERT_SQL = """
INSERT INTO inventory (tenant_id, sku, on_hand, version)
SELECT %s, sku, on_hand, 1 FROM unnest(%s::text[], %s::int[]) AS rows (sku, on_hand)
ON CONFLICT (tenant_id, sku) DO UPDATE
SET on_hand = excluded.on_hand, version = inventory.version + 1, updated_at = now()
WHERE inventory.on_hand <> excluded.on_hand
"""


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


# -- the bench tenant: emptied before each measurement, fingerprinted after ----------------------


def _delete_tenant_documents(collection: Collection, tenant: str) -> None:
    """FerretDB 1.24 deletes the matched documents in one PostgreSQL statement with a parameter
    each, so a `delete_many` matching more than 65,535 fails, and `$in` over thousands of ids is
    slow; delete in `_id` ranges of at most DELETE_BATCH documents instead."""
    ids = sorted(doc["_id"] for doc in collection.find({"tenant": tenant}, {"_id": True}))
    for start in range(0, len(ids), DELETE_BATCH):
        batch = ids[start : start + DELETE_BATCH]
        collection.delete_many({"tenant": tenant, "_id": {"$gte": batch[0], "$lte": batch[-1]}})


def clean_tenant(tenant: str) -> None:
    """Remove everything the tenant has in the five stores ingestion writes."""
    db = mongodb.database()
    _delete_tenant_documents(db[mongodb.PRODUCTS], tenant)
    _delete_tenant_documents(db[mongodb.IMPORT_REJECTS], tenant)
    for index in elasticsearch.versioned_indices(tenant):
        elasticsearch.delete_index(index)
    cache = redis.client()
    keys = list(cache.scan_iter(match=redis.key(tenant, "*"), count=10_000))
    for start in range(0, len(keys), 5000):
        cache.unlink(*keys[start : start + 5000])
    for label in ("Product", "Category"):  # one small transaction at a time: a 512 MB heap
        deleted = None
        while deleted != 0:
            records, _, _ = neo4j.driver().execute_query(
                f"MATCH (n:{label} {{tenant: $tenant}}) WITH n LIMIT 5000 "
                "DETACH DELETE n RETURN count(*) AS deleted",
                tenant=tenant,
            )
            deleted = records[0]["deleted"]
    with postgres.engine().begin() as connection:
        connection.exec_driver_sql("DELETE FROM inventory WHERE tenant_id = %s", (tenant,))


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fingerprint(tenant: str) -> dict[str, str]:
    """Per store: how many rows the tenant has, and a digest of a few rows (volatile fields out)."""
    db = mongodb.database()
    es = elasticsearch.client()
    elasticsearch.refresh(tenant)
    cache = redis.client()
    mongo_rows = [
        db[mongodb.PRODUCTS].find_one(
            {"tenant": tenant, "sku": sku}, {"_id": False, "updated_at": False}
        )
        for sku in SAMPLE_SKUS
    ]
    es_rows = [
        (hit["_version"], hit["_source"])
        for hit in (es.get(index=elasticsearch.read_alias(tenant), id=sku) for sku in SAMPLE_SKUS)
    ]
    graph, _, _ = neo4j.driver().execute_query(
        "MATCH (p:Product {tenant: $tenant}) OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category) "
        "RETURN count(p) AS products, count(c) AS edges, "
        "collect(CASE WHEN p.sku IN $skus THEN [p.sku, p.name, p.price, p.currency, c.path] END)"
        " AS sample",
        tenant=tenant,
        skus=list(SAMPLE_SKUS),
    )
    with postgres.engine().connect() as connection:
        stock = connection.exec_driver_sql(
            "SELECT count(*), sum(on_hand) FROM inventory WHERE tenant_id = %s", (tenant,)
        ).one()
    redis_keys = sum(1 for _ in cache.scan_iter(match=redis.key(tenant, "*"), count=10_000))
    redis_rows = cache.mget([redis.key(tenant, "product", sku) for sku in SAMPLE_SKUS])
    return {
        "mongodb": f"{db[mongodb.PRODUCTS].count_documents({'tenant': tenant})} "
        f"{_digest(mongo_rows)}",
        "elasticsearch": f"{es.count(index=elasticsearch.read_alias(tenant))['count']} "
        f"{_digest(es_rows)}",
        "redis": f"{redis_keys} {_digest(redis_rows)}",
        "neo4j": f"{graph[0]['products']} products, {graph[0]['edges']} edges "
        f"{_digest(sorted(graph[0]['sample']))}",
        "postgres": f"{stock[0]} rows, stock {stock[1]}",
    }


# -- 1. the flow ----------------------------------------------------------------------------------


@flow(name="bench-warm-up")
def _warm_up() -> None:
    """Starts the ephemeral Prefect server (when that is the profile) outside the timing."""


def _run_flow(path: str, tenant: str, chunk_size: int, result: multiprocessing.Queue) -> None:
    from flows.ingest_catalog import ingest_catalog

    started = time.perf_counter()
    _warm_up()
    warm_up = time.perf_counter() - started
    started = time.perf_counter()
    summary = ingest_catalog(path, tenant, chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.put((seconds, warm_up, peak_mb, summary.inserted, summary.store_seconds))


def measure_flow(
    path: Path, tenant: str, chunk_size: int
) -> tuple[float, float, float, int, dict[str, float]]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_run_flow, args=(str(path), tenant, chunk_size, results))
    child.start()
    while True:
        try:
            outcome = results.get(timeout=5)
            break
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"the flow's process exited with {child.exitcode}") from None
    child.join()
    return outcome


# -- 2. the raw baseline --------------------------------------------------------------------------


def read_products(path: Path, tenant: str, chunk_size: int) -> Iterator[list[dict[str, Any]]]:
    """The file's products in chunks, as the flow's records (same canonical form and hash), but
    parsed with the csv module alone: no GX suite, no reject bookkeeping (the file has no bad
    rows)."""
    with path.open(newline="") as source:
        chunk: list[dict[str, Any]] = []
        for values in csv.DictReader(source):
            row, issues = canonical_row(values)
            if issues:
                raise ValueError(f"unexpected bad row {values}: {issues}")
            chunk.append(dict(product_record(tenant, row)))
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def _content(product: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in product.items() if k not in mongodb.NOT_CATALOG_CONTENT}


def raw_mongodb(tenant: str, products: Sequence[dict[str, Any]]) -> dict[str, int]:
    """New products in one `insert_many`; any that exist already are updated in bulk writes of
    at most 40 statements and their versions read back by point lookups. Returns sku -> version.
    """
    collection = mongodb.database()[mongodb.PRODUCTS]
    now = datetime.now(UTC)
    documents = [
        {**_content(p), "tenant": tenant, "sku": p["sku"], "version": 1, "updated_at": now}
        for p in products
    ]
    versions = {p["sku"]: 1 for p in products}
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if any(e["code"] != mongodb.DUPLICATE_KEY for e in error.details["writeErrors"]):
            raise
        existing = [products[e["index"]] for e in error.details["writeErrors"]]
        updates = [
            UpdateOne(
                {"tenant": tenant, "sku": p["sku"], "content_hash": {"$ne": p["content_hash"]}},
                {"$set": {**_content(p), "updated_at": now}, "$inc": {"version": 1}},
            )
            for p in existing
        ]
        for start in range(0, len(updates), MONGO_UPDATE_BATCH):
            collection.bulk_write(updates[start : start + MONGO_UPDATE_BATCH], ordered=False)
        for p in existing:
            stored = collection.find_one({"tenant": tenant, "sku": p["sku"]}, {"version": True})
            versions[p["sku"]] = stored["version"]
    return versions


def raw_postgres(tenant: str, products: Sequence[dict[str, Any]]) -> None:
    stock = [(p["sku"], p["stock"]) for p in products if p.get("stock") is not None]
    if not stock:
        return
    skus, levels = zip(*stock, strict=True)
    connection = postgres.engine().raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(UPSERT_SQL, (tenant, list(skus), list(levels)))
        connection.commit()
    finally:
        connection.close()


def raw_elasticsearch(
    tenant: str, products: Sequence[dict[str, Any]], versions: dict[str, int]
) -> None:
    index = elasticsearch.write_alias(tenant)
    actions = (
        {
            "_index": index,
            "_id": p["sku"],
            "_version": versions[p["sku"]],
            "_version_type": "external",
            "_source": elasticsearch.product_document(tenant, {**p, "version": versions[p["sku"]]}),
        }
        for p in products
    )
    helpers.bulk(
        elasticsearch.client(),
        actions,
        chunk_size=ES_BULK_ROWS,
        raise_on_error=True,
        ignore_status=(409,),
    )


def raw_redis(tenant: str, products: Sequence[dict[str, Any]]) -> None:
    pipe = redis.client().pipeline(transaction=False)
    for p in products:
        pipe.set(
            redis.key(tenant, "product", p["sku"]),
            json.dumps(p, default=str),
            ex=redis.PRODUCT_TTL_SECONDS,
        )
    pipe.execute()


def raw_neo4j(tenant: str, products: Sequence[dict[str, Any]]) -> None:
    rows = [neo4j.product_row(product) for product in products]
    neo4j.driver().execute_query(neo4j.MERGE_PRODUCTS, rows=rows, tenant=tenant)


def _timed(seconds: dict[str, float], store: str, action: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    outcome = action()
    seconds[store] = seconds.get(store, 0.0) + time.perf_counter() - started
    return outcome


def write_raw(
    tenant: str,
    products: Sequence[dict[str, Any]],
    seconds: dict[str, float],
    pool: ThreadPoolExecutor | None = None,
) -> None:
    """One chunk: MongoDB and PostgreSQL first, then the three derived stores (concurrently when
    given a pool), as the flow orders them."""
    versions = _timed(seconds, "mongodb", lambda: raw_mongodb(tenant, products))
    _timed(seconds, "postgres", lambda: raw_postgres(tenant, products))
    fan_out: dict[str, Callable[[], None]] = {
        "elasticsearch": lambda: raw_elasticsearch(tenant, products, versions),
        "redis": lambda: raw_redis(tenant, products),
        "neo4j": lambda: raw_neo4j(tenant, products),
    }
    if pool is None:
        for store, action in fan_out.items():
            _timed(seconds, store, action)
        return
    futures = [pool.submit(_timed, seconds, store, action) for store, action in fan_out.items()]
    for future in futures:
        future.result()


def _prepare(tenant: str) -> None:
    """What the flow's `prepare-catalog-stores` does: the tenant row and its search index."""
    postgres.ensure_tenant(tenant)
    elasticsearch.ensure_tenant_index(tenant)


def measure_raw(path: Path, tenant: str, chunk_size: int) -> tuple[float, int, dict[str, float]]:
    seconds: dict[str, float] = {}
    written = 0
    started = time.perf_counter()
    _prepare(tenant)
    with ThreadPoolExecutor(3) as pool:
        for chunk in read_products(path, tenant, chunk_size):
            write_raw(tenant, chunk, seconds, pool)
            written += len(chunk)
    return time.perf_counter() - started, written, seconds


# -- 3. the naive reference -----------------------------------------------------------------------


@task(name="naive-one-product")
def _one_product(tenant: str, product: dict) -> None:
    write_raw(tenant, [product], {})


@flow(name="naive-catalog")
def _naive(tenant: str, products: list[dict]) -> None:
    _prepare(tenant)
    for product in products:
        _one_product(tenant, product)


def measure_naive(path: Path, tenant: str, sample: int) -> float:
    products = next(read_products(path, tenant, sample))
    _warm_up()
    started = time.perf_counter()
    _naive(tenant, products)
    return time.perf_counter() - started


def main(
    products: int = typer.Option(200_000, help="Catalog size N."),
    chunk_size: int = typer.Option(10_000, help="Rows per chunk, for the flow and the baseline."),
    naive_sample: int = typer.Option(200, help="Products in the one-task-per-product run."),
) -> None:
    def step(what: str) -> None:
        console.print(f"[{datetime.now():%H:%M:%S}] {what}")

    with TemporaryDirectory(prefix="polyflow-bench-") as folder:
        path = Path(folder) / "catalog.csv"
        write_catalog(path, products)
        step(f"catalog: {products} products, {path.stat().st_size / 2**20:.0f} MB CSV")
        clean_tenant(TENANT)
        step("flow ...")
        flow_s, warm_up_s, peak_mb, inserted, flow_stores = measure_flow(path, TENANT, chunk_size)
        step(f"flow: {flow_s:.1f} s; reading back ...")
        flow_rows = fingerprint(TENANT)
        clean_tenant(TENANT)
        step("raw ...")
        raw_s, written, raw_stores = measure_raw(path, TENANT, chunk_size)
        step(f"raw: {raw_s:.1f} s; reading back ...")
        raw_rows = fingerprint(TENANT)
        clean_tenant(TENANT)
        step("naive ...")
        naive_s = measure_naive(path, TENANT, naive_sample)
        clean_tenant(TENANT)

    table = Table(title=f"catalog ingestion, N = {products}, chunks of {chunk_size}")
    for column in ("run", "products", "seconds", "products/s", "notes"):
        table.add_column(column)
    stores = ", ".join(f"{k} {v:.1f}s" for k, v in flow_stores.items())
    table.add_row(
        "flow",
        str(inserted),
        f"{flow_s:.1f}",
        f"{inserted / flow_s:,.0f}",
        f"peak RSS {peak_mb:.0f} MB; Prefect start {warm_up_s:.1f}s (not counted); {stores}",
    )
    stores = ", ".join(f"{k} {v:.1f}s" for k, v in raw_stores.items())
    table.add_row("raw", str(written), f"{raw_s:.1f}", f"{written / raw_s:,.0f}", stores)
    table.add_row("naive", str(naive_sample), f"{naive_s:.1f}", f"{naive_sample / naive_s:,.1f}",
                  "one Prefect task per product")  # fmt: skip
    console.print(table)
    rows = Table(title="what each run left in the stores (count, digest of sample rows)")
    for column in ("store", "flow", "raw"):
        rows.add_column(column)
    for store in flow_rows:
        rows.add_row(store, flow_rows[store], raw_rows[store])
    console.print(rows)
    same = "yes" if flow_rows == raw_rows else "NO"
    console.print(f"flow and raw wrote the same rows: {same}")
    console.print(f"ratio flow/raw: {(inserted / flow_s) / (written / raw_s):.2f}")


if __name__ == "__main__":
    typer.run(main)
