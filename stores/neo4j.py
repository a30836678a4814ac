"""Neo4j: the recommendation graph (customers, products, categories and their relationships).

Every node carries its tenant and is unique per (tenant, natural id). Writes are batched: one
`UNWIND $rows ... MERGE` query per chunk, so a chunk is one round trip and re-running it merges
onto the same nodes and relationships instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from neo4j import Driver, GraphDatabase

from domain.settings import Settings, public_address, settings
from domain.tenancy import check_tenant
from stores import clients
from stores.health import StoreHealth, measure

STORE = "neo4j"

CONSTRAINTS = (
    "CREATE CONSTRAINT product_key IF NOT EXISTS "
    "FOR (p:Product) REQUIRE (p.tenant, p.sku) IS UNIQUE",
    "CREATE CONSTRAINT category_key IF NOT EXISTS "
    "FOR (c:Category) REQUIRE (c.tenant, c.path) IS UNIQUE",
    "CREATE CONSTRAINT customer_key IF NOT EXISTS "
    "FOR (c:Customer) REQUIRE (c.tenant, c.customer_id) IS UNIQUE",
)

MERGE_PRODUCTS = """
UNWIND $rows AS row
MERGE (p:Product {tenant: $tenant, sku: row.sku})
SET p.name = row.name, p.price = row.price, p.currency = row.currency
WITH p, row
OPTIONAL MATCH (p)-[old:IN_CATEGORY]->(previous:Category)
WHERE row.category IS NULL OR previous.path <> row.category
DELETE old
WITH DISTINCT p, row
WHERE row.category IS NOT NULL
MERGE (c:Category {tenant: $tenant, path: row.category})
MERGE (p)-[:IN_CATEGORY]->(c)
"""
"""A product sits in exactly its current category: a moved product leaves its old one."""


def _connect(config: Settings) -> Driver:
    """Credentials come from the URL (`bolt://user:password@host:port`, percent-encoded) and go
    to the driver as `auth`, the URL without them as its address."""
    url = config.neo4j_url
    return GraphDatabase.driver(
        url.driver_uri(),
        auth=url.credentials,
        connection_timeout=config.connect_timeout,
        connection_acquisition_timeout=config.connect_timeout * 4,
        max_transaction_retry_time=config.connect_timeout * 4,
    )


def driver() -> Driver:
    """The process-wide driver for the configured URL (see `stores.clients`); it pools Bolt
    connections."""
    return clients.shared(STORE, _connect, Driver.close)


def close() -> None:
    clients.close(STORE)


def bootstrap() -> None:
    """Create the uniqueness constraints (and the indexes behind them) if missing."""
    for constraint in (*CONSTRAINTS, *RECOMMENDATION_SCHEMA):
        driver().execute_query(constraint)


def health() -> StoreHealth:
    """A plain session: `execute_query` would retry a down server for seconds before failing."""

    def check() -> tuple[str, str]:
        with driver().session() as session:
            component = session.run(
                "CALL dbms.components() YIELD versions, edition "
                "RETURN versions[0] AS version, edition"
            ).single(strict=True)
            nodes = session.run("MATCH (n) RETURN count(n) AS nodes").single(strict=True)
        return f"{component['version']} {component['edition']}", f"{nodes['nodes']} nodes"

    return measure(STORE, public_address(settings().neo4j_url), check)


def product_row(product: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog product as MERGE_PRODUCTS takes it: price as a number, the category path."""
    return {
        "sku": product["sku"],
        "name": product["name"],
        "price": float(product["price"]),
        "currency": product["currency"],
        "category": product.get("category"),
    }


def merge_products(tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Merge Product and Category nodes and IN_CATEGORY edges for a chunk, in one transaction."""
    _unwind(MERGE_PRODUCTS, tenant, rows)


def _unwind(query: str, tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run an `UNWIND $rows` write for one tenant's rows in one transaction."""
    driver().execute_query(query, rows=[dict(row) for row in rows], tenant=check_tenant(tenant))


def products(tenant: str) -> dict[str, dict[str, Any]]:
    """The tenant's products with their category path, keyed by sku."""
    records, _, _ = driver().execute_query(
        "MATCH (p:Product {tenant: $tenant}) OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category) "
        "RETURN p.sku AS sku, p.name AS name, p.price AS price, c.path AS category",
        tenant=check_tenant(tenant),
    )
    return {record["sku"]: record.data() for record in records}


MERGE_CUSTOMERS = """
UNWIND $rows AS row
MERGE (c:Customer {tenant: $tenant, customer_id: row.customer_id})
WITH c, row
WHERE coalesce(c.version, 0) < row.version
SET c.email = row.email, c.name = row.name, c.version = row.version
"""
"""Customer profiles, version-guarded: an older profile never overwrites a newer one."""

MERGE_PURCHASES = """
UNWIND $rows AS row
MERGE (c:Customer {tenant: $tenant, customer_id: row.customer_id})
MERGE (p:Product {tenant: $tenant, sku: row.sku})
MERGE (c)-[r:PURCHASED {order_id: row.order_id}]->(p)
WITH r, row
WHERE coalesce(r.version, 0) < row.version
SET r.quantity = row.quantity, r.unit_price = row.unit_price, r.status = row.status,
    r.version = row.version
"""
"""One PURCHASED edge per (order, product), keyed by order id; a cancelled order's edges keep
their quantities with status 'cancelled', so a late replay of the placement cannot revive them."""


def merge_customers(tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    driver().execute_query(
        MERGE_CUSTOMERS, rows=[dict(r) for r in rows], tenant=check_tenant(tenant)
    )


def merge_purchases(tenant: str, rows: Sequence[Mapping[str, Any]]) -> None:
    driver().execute_query(
        MERGE_PURCHASES, rows=[dict(r) for r in rows], tenant=check_tenant(tenant)
    )


def purchases(tenant: str, order_id: str) -> dict[str, dict[str, Any]]:
    """The PURCHASED edges of one order, by sku, with the customer who placed it."""
    records, _, _ = driver().execute_query(
        "MATCH (c:Customer {tenant: $tenant})-[r:PURCHASED {order_id: $order_id}]->(p:Product) "
        "RETURN p.sku AS sku, c.customer_id AS customer_id, r.quantity AS quantity, "
        "r.status AS status, r.version AS version",
        tenant=check_tenant(tenant),
        order_id=order_id,
    )
    return {record["sku"]: record.data() for record in records}


# --- recommendation generations ---------------------------------------------------------------
#
# Community edition has one database, so a tenant's recommendations live in generations: every
# FREQUENTLY_BOUGHT_WITH and SIMILAR_TO edge, and every CustomerSeeds node (what a customer had
# bought when the generation was computed), carries its generation id. A RecommendationGeneration
# node per (tenant, generation) records its state: loading -> active -> retired. One
# RecommendationPointer per tenant names the active generation; readers follow it, so a
# generation being loaded, or left half-loaded by a run that died, is invisible to them.

RECOMMENDATION_SCHEMA = (
    "CREATE CONSTRAINT recommendation_pointer_key IF NOT EXISTS "
    "FOR (p:RecommendationPointer) REQUIRE p.tenant IS UNIQUE",
    "CREATE CONSTRAINT recommendation_generation_key IF NOT EXISTS "
    "FOR (g:RecommendationGeneration) REQUIRE (g.tenant, g.generation) IS UNIQUE",
    "CREATE CONSTRAINT customer_seeds_key IF NOT EXISTS "
    "FOR (s:CustomerSeeds) REQUIRE (s.tenant, s.generation, s.customer_id) IS UNIQUE",
    "CREATE INDEX customer_seeds_generation IF NOT EXISTS FOR (s:CustomerSeeds) ON (s.generation)",
    "CREATE INDEX bought_with_generation IF NOT EXISTS "
    "FOR ()-[r:FREQUENTLY_BOUGHT_WITH]-() ON (r.generation)",
    "CREATE INDEX similar_to_generation IF NOT EXISTS FOR ()-[r:SIMILAR_TO]-() ON (r.generation)",
)
LOAD_BATCH = 5000
"""Rows per UNWIND transaction while loading a generation."""
DELETE_BATCH = 10_000
"""Rows per inner transaction when a generation is deleted."""
LOADING = "loading"
ACTIVE = "active"
RETIRED = "retired"

LOAD_BOUGHT_WITH = """
UNWIND $rows AS row
MERGE (a:Product {tenant: $tenant, sku: row.source})
MERGE (b:Product {tenant: $tenant, sku: row.target})
CREATE (a)-[:FREQUENTLY_BOUGHT_WITH {generation: $generation, weight: row.weight,
    support: row.support, confidence: row.confidence, lift: row.lift, rank: row.rank}]->(b)
"""
LOAD_SIMILAR = """
UNWIND $rows AS row
MERGE (a:Product {tenant: $tenant, sku: row.source})
MERGE (b:Product {tenant: $tenant, sku: row.target})
CREATE (a)-[:SIMILAR_TO {generation: $generation, score: row.score}]->(b)
"""
LOAD_SEEDS = """
UNWIND $rows AS row
CREATE (:CustomerSeeds {tenant: $tenant, generation: $generation, customer_id: row.customer_id,
    skus: row.skus})
"""
"""CREATE, not MERGE: a new generation has no edges yet, and MERGE on a relationship scans the
relationships of its endpoints, which for a popular product are thousands (measured: 500 edges/s
with MERGE). A load that is repeated starts with `clear_generation`, so it never duplicates."""

SWITCH_GENERATION = """
MATCH (g:RecommendationGeneration {tenant: $tenant, generation: $generation})
MERGE (p:RecommendationPointer {tenant: $tenant})
WITH p, g, p.active AS previous
OPTIONAL MATCH (old:RecommendationGeneration {tenant: $tenant, generation: previous})
SET old.state = $retired
SET g.state = $active, g.switched_at = datetime(), g.checksum = $checksum
SET p.active = $generation, p.previous = previous, p.top_n = g.top_n,
    p.switched_at = datetime()
RETURN previous
"""
"""One write transaction: the generation becomes active and the pointer names it, or neither."""

BOUGHT_TOGETHER = """
MATCH (ptr:RecommendationPointer {tenant: $tenant})
OPTIONAL MATCH (:Product {tenant: $tenant, sku: $sku})
      -[r:FREQUENTLY_BOUGHT_WITH {generation: ptr.active}]->(q:Product)
WHERE r.rank > 0
WITH ptr, q, r ORDER BY r.rank
WITH ptr, [x IN collect([q.sku, r.weight]) WHERE x[0] IS NOT NULL] AS ranked
RETURN ptr.active AS generation, ranked[0..ptr.top_n] AS ranked
"""
SIMILAR_PRODUCTS = """
MATCH (ptr:RecommendationPointer {tenant: $tenant})
OPTIONAL MATCH (:Product {tenant: $tenant, sku: $sku})
      -[r:SIMILAR_TO {generation: ptr.active}]->(q:Product)
WITH ptr, q, r ORDER BY r.score DESC, q.sku
WITH ptr, [x IN collect([q.sku, r.score]) WHERE x[0] IS NOT NULL] AS ranked
RETURN ptr.active AS generation, ranked[0..ptr.top_n] AS ranked
"""
FOR_YOU = """
MATCH (ptr:RecommendationPointer {tenant: $tenant})
OPTIONAL MATCH (s:CustomerSeeds {tenant: $tenant, generation: ptr.active,
                                 customer_id: $customer_id})
WITH ptr, coalesce(s.skus, []) AS seeds
CALL (ptr, seeds) {
  UNWIND seeds AS seed
  MATCH (:Product {tenant: $tenant, sku: seed})
        -[r:FREQUENTLY_BOUGHT_WITH|SIMILAR_TO]->(q:Product)
  WHERE r.generation = ptr.active AND (r:SIMILAR_TO OR r.rank > 0) AND NOT q.sku IN seeds
  WITH q.sku AS sku, sum(toInteger(round(coalesce(r.weight, r.score) * 1000000))) AS micros
  ORDER BY micros DESC, sku
  RETURN collect([sku, micros]) AS ranked
}
RETURN ptr.active AS generation,
       [x IN ranked[0..ptr.top_n] | [x[0], toFloat(x[1]) / 1000000.0]] AS ranked
"""
"""The seed's two queries in one: what the customer's seeds are listed as bought with (rank > 0:
in the seed's own top N) or similar to, minus the seeds, by summed weight in integer millionths
(the same sums the rebuild computed)."""


def bootstrap_recommendations() -> None:
    for statement in RECOMMENDATION_SCHEMA:
        driver().execute_query(statement)


def begin_generation(tenant: str, generation: str, top_n: int) -> None:
    """Register a generation about to be loaded; until it is switched, no reader sees it."""
    driver().execute_query(
        "MERGE (g:RecommendationGeneration {tenant: $tenant, generation: $generation}) "
        "ON CREATE SET g.state = $loading, g.started_at = datetime(), g.top_n = $top_n",
        tenant=check_tenant(tenant),
        generation=generation,
        loading=LOADING,
        top_n=top_n,
    )


def _load(query: str, tenant: str, generation: str, rows: Sequence[Mapping[str, Any]]) -> int:
    check_tenant(tenant)
    for start in range(0, len(rows), LOAD_BATCH):
        driver().execute_query(
            query,
            rows=[dict(row) for row in rows[start : start + LOAD_BATCH]],
            tenant=tenant,
            generation=generation,
        )
    return len(rows)


def load_bought_together(tenant: str, generation: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """FREQUENTLY_BOUGHT_WITH {weight, support, confidence, lift, rank, generation} edges, in
    batches; rank is the edge's place in its source's list (0: kept only as a reverse)."""
    return _load(LOAD_BOUGHT_WITH, tenant, generation, rows)


def load_similar(tenant: str, generation: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """SIMILAR_TO {score, generation} edges, in batches; rows have source, target, score."""
    return _load(LOAD_SIMILAR, tenant, generation, rows)


def load_seeds(tenant: str, generation: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """One CustomerSeeds node per customer: the skus their "for you" list starts from."""
    return _load(LOAD_SEEDS, tenant, generation, rows)


def generation_bought_together(tenant: str, generation: str) -> list[dict[str, Any]]:
    """Every FREQUENTLY_BOUGHT_WITH edge of one generation of a tenant, as loaded."""
    records, _, _ = driver().execute_query(
        "MATCH (a:Product)-[r:FREQUENTLY_BOUGHT_WITH {generation: $generation}]->(b:Product) "
        "WHERE a.tenant = $tenant "
        "RETURN a.sku AS source, b.sku AS target, r.support AS support, r.weight AS weight, "
        "r.rank AS rank, b.tenant AS target_tenant",
        tenant=check_tenant(tenant),
        generation=generation,
    )
    return [record.data() for record in records]


def generation_similar(tenant: str, generation: str) -> list[dict[str, Any]]:
    records, _, _ = driver().execute_query(
        "MATCH (a:Product)-[r:SIMILAR_TO {generation: $generation}]->(b:Product) "
        "WHERE a.tenant = $tenant "
        "RETURN a.sku AS source, b.sku AS target, r.score AS score, b.tenant AS target_tenant",
        tenant=check_tenant(tenant),
        generation=generation,
    )
    return [record.data() for record in records]


GENERATION_COLUMNS = {
    "bought": "MATCH (a:Product)-[r:FREQUENTLY_BOUGHT_WITH {generation: $generation}]->(b:Product) "
    "WHERE a.tenant = $tenant RETURN collect(a.sku) AS source, collect(b.sku) AS target, "
    "collect(r.support) AS support, collect(r.weight) AS weight, collect(r.rank) AS rank, "
    "collect(b.tenant) AS target_tenant",
    "similar": "MATCH (a:Product)-[r:SIMILAR_TO {generation: $generation}]->(b:Product) "
    "WHERE a.tenant = $tenant RETURN collect(a.sku) AS source, collect(b.sku) AS target, "
    "collect(r.score) AS score, collect(b.tenant) AS target_tenant",
    "seeds": "MATCH (s:CustomerSeeds {generation: $generation}) WHERE s.tenant = $tenant "
    "RETURN collect(s.customer_id) AS customer_id, collect(s.skus) AS skus",
}
"""What the gate reads back of a generation, one column list per property: one record of
lists decodes several times faster than 10^5 records."""


def generation_columns(tenant: str, generation: str, kind: str) -> dict[str, list[Any]]:
    """The `kind` ("bought", "similar" or "seeds") of one generation of a tenant, as columns."""
    records, _, _ = driver().execute_query(
        GENERATION_COLUMNS[kind], tenant=check_tenant(tenant), generation=generation
    )
    return records[0].data()


def generation_seeds(tenant: str, generation: str) -> list[dict[str, Any]]:
    records, _, _ = driver().execute_query(
        "MATCH (s:CustomerSeeds {generation: $generation}) WHERE s.tenant = $tenant "
        "RETURN s.customer_id AS customer_id, s.skus AS skus",
        tenant=check_tenant(tenant),
        generation=generation,
    )
    return [record.data() for record in records]


def switch_generation(tenant: str, generation: str, checksum: str) -> str | None:
    """Make a loaded generation the tenant's active one; returns the one it replaced."""
    records, _, _ = driver().execute_query(
        SWITCH_GENERATION,
        tenant=check_tenant(tenant),
        generation=generation,
        checksum=checksum,
        active=ACTIVE,
        retired=RETIRED,
    )
    if not records:
        raise LookupError(f"generation {generation} of tenant {tenant!r} was never begun")
    return records[0]["previous"]


def active_generation(tenant: str) -> str | None:
    records, _, _ = driver().execute_query(
        "MATCH (p:RecommendationPointer {tenant: $tenant}) RETURN p.active AS active",
        tenant=check_tenant(tenant),
    )
    return records[0]["active"] if records else None


def recommendation_generations(tenant: str) -> list[dict[str, Any]]:
    """The tenant's generations, newest first, with their state."""
    records, _, _ = driver().execute_query(
        "MATCH (g:RecommendationGeneration {tenant: $tenant}) "
        "RETURN g.generation AS generation, g.state AS state ORDER BY generation DESC",
        tenant=check_tenant(tenant),
    )
    return [record.data() for record in records]


def drop_generation(tenant: str, generation: str) -> None:
    """Delete one generation of a tenant: its edges and seeds, then its record. The active
    generation is never dropped."""
    check_tenant(tenant)
    if active_generation(tenant) == generation:
        raise ValueError(f"generation {generation} is the active one of tenant {tenant!r}")
    _delete_generation(tenant, generation, keep_record=False)


def clear_generation(tenant: str, generation: str) -> None:
    """Delete what a generation that is still loading holds, keeping its record: where a
    repeated load starts. The active generation is never cleared."""
    check_tenant(tenant)
    if active_generation(tenant) == generation:
        raise ValueError(f"generation {generation} is the active one of tenant {tenant!r}")
    _delete_generation(tenant, generation, keep_record=True)


def _delete_generation(tenant: str, generation: str, keep_record: bool) -> None:
    """Edges and seeds in batches of `DELETE_BATCH`, each batch its own transaction (`CALL ...
    IN TRANSACTIONS` needs an auto-commit transaction, hence `session.run`)."""
    statements = (
        "MATCH (a:Product)-[r:FREQUENTLY_BOUGHT_WITH {generation: $generation}]->() "
        "WHERE a.tenant = $tenant "
        f"CALL (r) {{ DELETE r }} IN TRANSACTIONS OF {DELETE_BATCH} ROWS",
        "MATCH (a:Product)-[r:SIMILAR_TO {generation: $generation}]->() "
        "WHERE a.tenant = $tenant "
        f"CALL (r) {{ DELETE r }} IN TRANSACTIONS OF {DELETE_BATCH} ROWS",
        "MATCH (s:CustomerSeeds {generation: $generation}) WHERE s.tenant = $tenant "
        f"CALL (s) {{ DELETE s }} IN TRANSACTIONS OF {DELETE_BATCH} ROWS",
        "MATCH (g:RecommendationGeneration {tenant: $tenant, generation: $generation}) DELETE g",
    )
    with driver().session() as session:
        for statement in statements[:-1] if keep_record else statements:
            session.run(statement, tenant=tenant, generation=generation).consume()


def prune_generations(tenant: str, keep: int, current: str) -> list[str]:
    """Drop the generations beyond the newest `keep` that were active once (the active one
    counts), and every other one still loading but `current`: what a run that died half-way
    left behind. Returns the dropped ids."""
    generations = recommendation_generations(tenant)
    active = active_generation(tenant)
    served = [g["generation"] for g in generations if g["state"] in (ACTIVE, RETIRED)]
    kept = {active, current, *served[:keep]}
    dropped = [g["generation"] for g in generations if g["generation"] not in kept]
    for generation in dropped:
        drop_generation(tenant, generation)
    return dropped


def _ranked(query: str, **parameters: Any) -> tuple[str | None, list[tuple[str, float]]]:
    records, _, _ = driver().execute_query(query, routing_="r", **parameters)
    if not records:
        return None, []
    return records[0]["generation"], [(sku, float(score)) for sku, score in records[0]["ranked"]]


def bought_together(tenant: str, sku: str) -> tuple[str | None, list[tuple[str, float]]]:
    """(active generation, the product's top N bought-together (sku, weight)); (None, []) when
    the tenant has no active generation."""
    return _ranked(BOUGHT_TOGETHER, tenant=check_tenant(tenant), sku=sku)


def similar_products(tenant: str, sku: str) -> tuple[str | None, list[tuple[str, float]]]:
    return _ranked(SIMILAR_PRODUCTS, tenant=check_tenant(tenant), sku=sku)


def recommended_for(tenant: str, customer_id: str) -> tuple[str | None, list[tuple[str, float]]]:
    """(active generation, the customer's top N "for you" (sku, summed weight))."""
    return _ranked(FOR_YOU, tenant=check_tenant(tenant), customer_id=customer_id)


# --- consistency: what a check streams, and what a repair clears ------------------------------
#
# Cypher has no hash function in Community edition (no APOC), so a check streams the compared
# properties of one tenant's nodes or edges, one fetch at a time, and folds them client-side.

CONSISTENCY_FETCH = 5000


def _stream(query: str, **parameters: Any) -> Iterator[dict[str, Any]]:
    with driver().session(fetch_size=CONSISTENCY_FETCH) as session:
        for record in session.run(query, **parameters):
            yield record.data()


def purchase_records(tenant: str) -> Iterator[dict[str, Any]]:
    """order_id, sku, quantity, status, version of every PURCHASED edge of a tenant."""
    return _stream(
        "MATCH (:Customer {tenant: $tenant})-[r:PURCHASED]->(p:Product) "
        "RETURN r.order_id AS order_id, p.sku AS sku, r.quantity AS quantity, "
        "r.status AS status, r.version AS version",
        tenant=check_tenant(tenant),
    )


def customer_records(tenant: str) -> Iterator[dict[str, Any]]:
    """customer_id, version, email, name of every Customer node of a tenant."""
    return _stream(
        "MATCH (c:Customer {tenant: $tenant}) RETURN c.customer_id AS customer_id, "
        "c.version AS version, c.email AS email, c.name AS name",
        tenant=check_tenant(tenant),
    )


def product_records(tenant: str) -> Iterator[dict[str, Any]]:
    """sku, name, price, currency, category of every Product node of a tenant."""
    return _stream(
        "MATCH (p:Product {tenant: $tenant}) OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category) "
        "RETURN p.sku AS sku, p.name AS name, p.price AS price, p.currency AS currency, "
        "c.path AS category",
        tenant=check_tenant(tenant),
    )


def delete_purchases(tenant: str, edges: Sequence[tuple[str, str]]) -> None:
    """Delete the PURCHASED edges (order_id, sku) of a tenant: a repair re-derives them."""
    driver().execute_query(
        "UNWIND $edges AS edge "
        "MATCH (:Customer {tenant: $tenant})-[r:PURCHASED {order_id: edge[0]}]->"
        "(:Product {tenant: $tenant, sku: edge[1]}) DELETE r",
        edges=[list(edge) for edge in edges],
        tenant=check_tenant(tenant),
    )


def reset_customers(tenant: str, customer_ids: Sequence[str]) -> None:
    """Clear the profile of these Customer nodes (version 0), so the version guard lets a
    re-derived profile in; their PURCHASED edges stay."""
    driver().execute_query(
        "UNWIND $ids AS id MATCH (c:Customer {tenant: $tenant, customer_id: id}) "
        "SET c.version = 0, c.email = null, c.name = null",
        ids=list(customer_ids),
        tenant=check_tenant(tenant),
    )


def delete_nodes(tenant: str, label: str, key: str, ids: Sequence[str]) -> None:
    """Detach and delete a tenant's nodes of `label` ('Customer' or 'Product') by natural id:
    what a repair does with a node no source of truth has."""
    if (label, key) not in (("Customer", "customer_id"), ("Product", "sku")):
        raise ValueError(f"not a derived node: {label}.{key}")
    driver().execute_query(
        f"UNWIND $ids AS id MATCH (n:{label} {{tenant: $tenant, {key}: id}}) DETACH DELETE n",
        ids=list(ids),
        tenant=check_tenant(tenant),
    )
