from __future__ import annotations

from stores import elasticsearch


def doc(tenant: str, sku: str, name: str) -> dict[str, object]:
    return {"tenant": tenant, "sku": sku, "name": name, "category": "kitchen", "price": 9.5}


def test_index_and_search_through_the_aliases(tenant: str) -> None:
    index = elasticsearch.ensure_tenant_index(tenant)
    elasticsearch.index_products(
        tenant, [doc(tenant, "SKU-1", "Red kettle"), doc(tenant, "SKU-2", "Blue teapot")]
    )
    elasticsearch.refresh(tenant)

    assert elasticsearch.ensure_tenant_index(tenant) == index
    assert [hit["sku"] for hit in elasticsearch.search_products(tenant, "kettle")] == ["SKU-1"]
    aliases = elasticsearch.client().indices.get_alias(index=index)[index]["aliases"]
    assert set(aliases) == {elasticsearch.read_alias(tenant), elasticsearch.write_alias(tenant)}


def test_reindexing_the_same_sku_does_not_duplicate(tenant: str) -> None:
    elasticsearch.ensure_tenant_index(tenant)
    elasticsearch.index_products(tenant, [doc(tenant, "SKU-1", "Kettle")])
    elasticsearch.index_products(tenant, [doc(tenant, "SKU-1", "Kettle v2")])
    elasticsearch.refresh(tenant)

    count = elasticsearch.client().count(index=elasticsearch.read_alias(tenant))["count"]
    assert count == 1
    assert elasticsearch.search_products(tenant, "kettle")[0]["name"] == "Kettle v2"


def test_query_syntax_in_search_text_is_matched_as_text(tenant: str) -> None:
    elasticsearch.ensure_tenant_index(tenant)
    elasticsearch.index_products(tenant, [doc(tenant, "SKU-1", "name:* OR _id:*")])
    elasticsearch.refresh(tenant)

    assert elasticsearch.search_products(tenant, "nothing-like-this") == []
    assert [h["sku"] for h in elasticsearch.search_products(tenant, "name:* OR _id:*")] == ["SKU-1"]
