from __future__ import annotations

from stores import elasticsearch


def doc(sku: str, name: str, version: int = 1) -> dict[str, object]:
    return {"sku": sku, "name": name, "category": "kitchen", "price": "9.5", "version": version}


def index(tenant: str, *products: dict[str, object]) -> int:
    """As ingestion indexes a chunk: `bulk_index` into the tenant's write alias."""
    return elasticsearch.bulk_index(tenant, elasticsearch.write_alias(tenant), products)


def test_index_and_search_through_the_aliases(tenant: str) -> None:
    index_name = elasticsearch.ensure_tenant_index(tenant)
    assert index(tenant, doc("SKU-1", "Red kettle"), doc("SKU-2", "Blue teapot")) == 2
    elasticsearch.refresh(tenant)

    assert elasticsearch.ensure_tenant_index(tenant) == index_name
    assert [hit["sku"] for hit in elasticsearch.search_products(tenant, "kettle")] == ["SKU-1"]
    aliases = elasticsearch.client().indices.get_alias(index=index_name)[index_name]["aliases"]
    assert set(aliases) == {elasticsearch.read_alias(tenant), elasticsearch.write_alias(tenant)}


def test_reindexing_the_same_sku_does_not_duplicate(tenant: str) -> None:
    elasticsearch.ensure_tenant_index(tenant)
    index(tenant, doc("SKU-1", "Kettle"))
    index(tenant, doc("SKU-1", "Kettle v2", version=2))
    elasticsearch.refresh(tenant)

    count = elasticsearch.client().count(index=elasticsearch.read_alias(tenant))["count"]
    assert count == 1
    assert elasticsearch.search_products(tenant, "kettle")[0]["name"] == "Kettle v2"


def test_query_syntax_in_search_text_is_matched_as_text(tenant: str) -> None:
    elasticsearch.ensure_tenant_index(tenant)
    index(tenant, doc("SKU-1", "name:* OR _id:*"))
    elasticsearch.refresh(tenant)

    assert elasticsearch.search_products(tenant, "nothing-like-this") == []
    assert [h["sku"] for h in elasticsearch.search_products(tenant, "name:* OR _id:*")] == ["SKU-1"]


def catalog_product(sku: str, version: int = 1, **fields: object) -> dict[str, object]:
    """A product as MongoDB holds it: price as decimal text, Mongo's `_id`, unmapped fields."""
    return {
        "_id": f"oid-{sku}",
        "sku": sku,
        "name": f"{sku} kettle",
        "category": "kitchen/kettles/electric",
        "price": "12.50",
        "currency": "EUR",
        "content_hash": f"h-{sku}-{version}",
        "version": version,
        "stock": 4,
        **fields,
    }


def test_product_document_keeps_mapped_fields_and_makes_price_a_number() -> None:
    document = elasticsearch.product_document("acme", catalog_product("SKU-1", tenant="other"))

    assert document == {
        "tenant": "acme",
        "sku": "SKU-1",
        "name": "SKU-1 kettle",
        "category": "kitchen/kettles/electric",
        "categories": ["kitchen", "kitchen/kettles", "kitchen/kettles/electric"],
        "price": 12.5,
        "currency": "EUR",
        "content_hash": "h-SKU-1-1",
        "version": 1,
    }


def test_only_a_newer_version_is_written(tenant: str) -> None:
    index = elasticsearch.ensure_tenant_index(tenant)
    assert elasticsearch.bulk_index(tenant, index, [catalog_product("SKU-1", 2, name="new")]) == 1
    assert elasticsearch.bulk_index(tenant, index, [catalog_product("SKU-1", 1, name="old")]) == 0
    assert elasticsearch.bulk_index(tenant, index, [catalog_product("SKU-1", 2, name="new")]) == 0

    stored = elasticsearch.client().get(index=index, id="SKU-1")
    assert (stored["_version"], stored["_source"]["name"]) == (2, "new")


def test_swap_moves_both_aliases_atomically_and_again_changes_nothing(tenant: str) -> None:
    old = elasticsearch.ensure_tenant_index(tenant)
    new = elasticsearch.create_build_index(tenant)
    elasticsearch.bulk_index(tenant, new, [catalog_product("SKU-1")])
    elasticsearch.finish_build(new)

    assert elasticsearch.swap_aliases(tenant, new) == [old]
    assert elasticsearch.swap_aliases(tenant, new) == []
    assert elasticsearch.versioned_indices(tenant) == {
        old: set(),
        new: {elasticsearch.read_alias(tenant), elasticsearch.write_alias(tenant)},
    }
    assert elasticsearch.current_index(tenant) == new
    settings = elasticsearch.client().indices.get_settings(index=new)[new]["settings"]["index"]
    assert "refresh_interval" not in settings
    assert elasticsearch.search(tenant, "kettle").total == 1


def test_prune_keeps_the_newest_and_never_an_index_with_an_alias(tenant: str) -> None:
    neighbour = f"{tenant}-1"
    elasticsearch.ensure_tenant_index(neighbour)
    live = elasticsearch.ensure_tenant_index(tenant)
    built = [elasticsearch.create_build_index(tenant) for _ in range(3)]

    assert elasticsearch.prune_indices(tenant, keep=2) == [built[0]]
    assert list(elasticsearch.versioned_indices(tenant)) == [live, *built[1:]]
    assert elasticsearch.current_index(neighbour) is not None


def test_search_filters_by_price_and_parent_category_and_counts_categories(tenant: str) -> None:
    index = elasticsearch.ensure_tenant_index(tenant)
    elasticsearch.bulk_index(
        tenant,
        index,
        [
            catalog_product("K-1", price="10"),
            catalog_product("K-2", price="30", category="kitchen/kettles/stove"),
            catalog_product("G-1", price="20", category="garden", name="garden kettle"),
        ],
    )
    elasticsearch.refresh(tenant)

    everything = elasticsearch.search(tenant, "kettle")
    assert everything.total == 3
    assert everything.facets == {
        "garden": 1,
        "kitchen/kettles/electric": 1,
        "kitchen/kettles/stove": 1,
    }
    kitchen = elasticsearch.search(tenant, "kettle", category="kitchen/kettles", max_price=25)
    assert [hit.sku for hit in kitchen.hits] == ["K-1"]
    assert kitchen.hits[0].price == 10.0
    assert kitchen.facets == {"garden": 1, "kitchen/kettles/electric": 1}
    assert elasticsearch.search(tenant, "kettle", min_price=31).hits == []


def test_search_treats_query_syntax_and_json_as_words(tenant: str) -> None:
    index = elasticsearch.ensure_tenant_index(tenant)
    elasticsearch.bulk_index(
        tenant,
        index,
        [
            catalog_product("SKU-1", name="name:* OR _id:*"),
            catalog_product("SKU-2", name='{"match_all":{}}'),
            catalog_product("SKU-3", name="plain"),
        ],
    )
    elasticsearch.refresh(tenant)

    assert [h.sku for h in elasticsearch.search(tenant, "name:* OR _id:*").hits] == ["SKU-1"]
    assert [h.sku for h in elasticsearch.search(tenant, '{"match_all":{}}').hits] == ["SKU-2"]
