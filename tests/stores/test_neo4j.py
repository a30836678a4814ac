from __future__ import annotations

from stores import neo4j


def row(sku: str, category: str = "kitchen/kettles") -> dict[str, object]:
    return {
        "sku": sku,
        "name": f"Product {sku}",
        "price": 9.5,
        "currency": "EUR",
        "category": category,
    }


def test_merge_products_is_idempotent(tenant: str) -> None:
    rows = [row("SKU-1"), row("SKU-2", "kitchen/teapots")]
    neo4j.merge_products(tenant, rows)
    neo4j.merge_products(tenant, rows)

    assert neo4j.products(tenant) == {
        "SKU-1": {
            "sku": "SKU-1",
            "name": "Product SKU-1",
            "price": 9.5,
            "category": "kitchen/kettles",
        },
        "SKU-2": {
            "sku": "SKU-2",
            "name": "Product SKU-2",
            "price": 9.5,
            "category": "kitchen/teapots",
        },
    }
    edges, _, _ = neo4j.driver().execute_query(
        "MATCH (:Product {tenant: $t})-[r:IN_CATEGORY]->() RETURN count(r) AS n", t=tenant
    )
    assert edges[0]["n"] == 2


def test_tenants_get_separate_nodes(tenant: str) -> None:
    neo4j.merge_products(tenant, [row("SKU-1")])
    neo4j.merge_products(f"{tenant}-b", [row("SKU-1")])

    assert list(neo4j.products(tenant)) == ["SKU-1"]
    assert list(neo4j.products(f"{tenant}-b")) == ["SKU-1"]


def test_cypher_looking_strings_are_stored_literally(tenant: str) -> None:
    sneaky = "x'}) MATCH (n) DETACH DELETE n //"
    neo4j.merge_products(tenant, [row(sneaky)])

    assert list(neo4j.products(tenant)) == [sneaky]


def test_a_moved_product_leaves_its_old_category(tenant: str) -> None:
    neo4j.merge_products(tenant, [row("SKU-1", "kitchen/kettles"), row("SKU-2")])
    neo4j.merge_products(tenant, [row("SKU-1", "garden/tools"), {**row("SKU-2"), "category": None}])

    stored = neo4j.products(tenant)
    assert (stored["SKU-1"]["category"], stored["SKU-2"]["category"]) == ("garden/tools", None)
