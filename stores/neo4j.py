"""Neo4j: the recommendation graph (customers, products, categories and their relationships).

Every node carries its tenant and is unique per (tenant, natural id). Writes are batched: one
`UNWIND $rows ... MERGE` query per chunk, so a chunk is one round trip and re-running it merges
onto the same nodes and relationships instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    for constraint in CONSTRAINTS:
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
