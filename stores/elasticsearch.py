"""Elasticsearch: the product search index, versioned indices behind per-tenant aliases.

Each tenant's products live in `products-{tenant}-{version}` indices. Readers use the alias
`products-{tenant}`; writers use `products-{tenant}-write`. A reindex builds a new version and
moves both aliases in one atomic `update_aliases` call, so readers never see a half-built index.
Every index gets its mapping from one composable index template.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError, helpers

from domain.settings import Settings, public_address, settings
from domain.tenancy import check_tenant
from stores import clients
from stores.health import StoreHealth, measure

STORE = "elasticsearch"
TEMPLATE = "polyflow-products"
INDEX_PREFIX = "products."
VERSION_DIGITS = 20
"""`new_index_name` appends `%Y%m%d%H%M%S%f`: 20 digits, so names sort by creation time."""
FACET_SIZE = 50

PRODUCT_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "tenant": {"type": "keyword"},
        "sku": {"type": "keyword"},
        "name": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 256}}},
        "description": {"type": "text"},
        "category": {"type": "keyword"},
        "categories": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "price": {"type": "double"},
        "currency": {"type": "keyword"},
        "attributes": {"type": "object", "enabled": False},
        "content_hash": {"type": "keyword"},
        "version": {"type": "long"},
        "updated_at": {"type": "date"},
    },
}


def read_alias(tenant: str) -> str:
    """`products.<tenant>`: '.' cannot be part of a tenant id, so no tenant's name plus a
    suffix we append (`.write`, `.v<time>`) is ever another tenant's name."""
    return f"{INDEX_PREFIX}{check_tenant(tenant)}"


def write_alias(tenant: str) -> str:
    return f"{read_alias(tenant)}.write"


def new_index_name(tenant: str) -> str:
    """A fresh versioned index name; versions sort by creation time."""
    return f"{read_alias(tenant)}.v{datetime.now(UTC):%Y%m%d%H%M%S%f}"


def _connect(config: Settings) -> Elasticsearch:
    return Elasticsearch(
        config.elasticsearch_url.reveal(),
        request_timeout=max(config.connect_timeout * 10, 30),
        retry_on_timeout=True,
        max_retries=2,
    )


def client() -> Elasticsearch:
    """The process-wide client for the configured URL (see `stores.clients`); it pools HTTP
    connections."""
    return clients.shared(STORE, _connect, Elasticsearch.close)


def close() -> None:
    clients.close(STORE)


def bootstrap() -> None:
    """Install the product index template (a PUT of the same template is a no-op in effect)."""
    client().indices.put_index_template(
        name=TEMPLATE,
        index_patterns=[f"{INDEX_PREFIX}*"],
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": PRODUCT_MAPPING,
        },
        priority=100,
    )


def health() -> StoreHealth:
    def check() -> tuple[str, str]:
        es = client()
        version = es.nodes.info(node_id="_local", metric="_none")
        number = next(iter(version["nodes"].values()))["version"]
        es.cluster.health(wait_for_status="yellow", timeout="1s")
        docs = es.count(index=f"{INDEX_PREFIX}*", allow_no_indices=True)["count"]
        return number, f"{docs} documents"

    return measure(STORE, public_address(settings().elasticsearch_url), check)


def ensure_tenant_index(tenant: str) -> str:
    """The tenant's current write index, creating the first version (with both aliases) if none."""
    es = client()
    try:
        return next(iter(es.indices.get_alias(name=write_alias(tenant))))
    except NotFoundError:
        index = new_index_name(tenant)
        es.indices.create(
            index=index,
            aliases={read_alias(tenant): {}, write_alias(tenant): {"is_write_index": True}},
        )
        return index


def refresh(tenant: str) -> None:
    client().indices.refresh(index=read_alias(tenant))


def search_products(tenant: str, text: str, size: int = 10) -> list[dict[str, Any]]:
    """Products matching `text` in name or description, best first."""
    response = client().search(
        index=read_alias(tenant),
        query={"multi_match": {"query": text, "fields": ["name^3", "description"]}},
        size=size,
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


def product_document(tenant: str, product: Mapping[str, Any]) -> dict[str, Any]:
    """The search document of a catalog product as MongoDB holds it; ingestion and reindex both
    index exactly this, so a product looks the same whichever path indexed it.

    Only mapped fields are kept (the mapping is strict, and a stored product carries more, such
    as Mongo's `_id` or `stock`). The price becomes a number: the catalog keeps it as decimal
    text so no digit is lost, but ranges and sorting need a number; `updated_at` becomes ISO
    text, as ES stores and returns it. `categories` holds the category and its ancestors
    ("kitchen", "kitchen/kettles"), so filtering on a parent category finds its children's
    products.
    """
    document = {
        field: product[field]
        for field in PRODUCT_MAPPING["properties"]
        if field in product and field not in ("tenant", "categories")
    }
    document["tenant"] = tenant
    if document.get("price") is not None:
        document["price"] = float(str(document["price"]))
    if isinstance(document.get("updated_at"), datetime):
        document["updated_at"] = document["updated_at"].isoformat()
    category = product.get("category")
    if category:
        parts = category.split("/")
        document["categories"] = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return document


def _version_pattern(tenant: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(read_alias(tenant))}\.v\d{{{VERSION_DIGITS}}}")


def create_build_index(tenant: str) -> str:
    """A new, empty versioned index without aliases, refresh off while it is bulk-loaded.

    Its mapping comes from the template like every other version's.
    """
    index = new_index_name(tenant)
    client().indices.create(index=index, settings={"index": {"refresh_interval": "-1"}})
    return index


def finish_build(index: str) -> None:
    """Restore the default refresh interval and make everything indexed so far searchable."""
    es = client()
    es.indices.put_settings(index=index, settings={"index": {"refresh_interval": None}})
    es.indices.refresh(index=index)


def _index_action(
    tenant: str, index: str, product: Mapping[str, Any], version_type: str = "external"
) -> dict[str, Any]:
    action = {"_index": index, "_id": product["sku"], "_source": product_document(tenant, product)}
    if product.get("version") is not None:
        action |= {"_version": product["version"], "_version_type": version_type}
    return action


def bulk_index(
    tenant: str,
    index: str,
    products: Iterable[Mapping[str, Any]],
    version_type: str = "external",
) -> int:
    """Bulk-index catalog products (see `product_document`) into an index or alias, sku as id.

    The catalog version is the document version (`external`): a document is written only if
    the index does not hold that product at the same or a newer version yet. So a writer with an
    older read (a reindex page, a late retry) never overwrites a newer one, and re-sending what is
    already there is a no-op; ES answers both with a conflict, which is skipped. Returns how many
    documents were written. A repair passes `external_gte`: a document at the same version is
    rewritten (it drifted, or was deleted and left a tombstone), a newer one still wins.
    """
    actions = (_index_action(tenant, index, product, version_type) for product in products)
    written, _ = helpers.bulk(
        client(), actions, chunk_size=2000, raise_on_error=True, ignore_status=(409,)
    )
    return written


def _holders(alias: str) -> set[str]:
    """The indices an alias points to (none when the alias does not exist)."""
    try:
        return set(client().indices.get_alias(name=alias))
    except NotFoundError:
        return set()


def current_index(tenant: str) -> str | None:
    """The index behind the tenant's write alias, or None when the tenant has no index yet."""
    return next(iter(_holders(write_alias(tenant))), None)


def content_hashes(index: str, batch_size: int = 5000) -> Iterator[tuple[str, str | None]]:
    """(sku, content_hash) of every document of an index, streamed a scroll page at a time."""
    for hit in helpers.scan(
        client(),
        index=index,
        _source=["sku", "content_hash"],
        size=batch_size,
    ):
        yield hit["_source"]["sku"], hit["_source"].get("content_hash")


def swap_aliases(tenant: str, index: str) -> list[str]:
    """Move the read and the write alias onto `index` in one atomic `update_aliases` call.

    The aliases leave whichever indices hold them now (usually the previous version; possibly a
    first version that ingestion created while this one was built). Returns those indices. Each
    removal must still hold when the call runs, so if another run moved an alias in between, the
    whole call fails and nothing changes. Once both aliases are on `index` alone, calling again
    changes nothing, so a retry after a lost response is safe.
    """
    aliases = (read_alias(tenant), write_alias(tenant))
    holders = {alias: _holders(alias) for alias in aliases}
    if all(found == {index} for found in holders.values()):
        return []
    actions: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": alias, "must_exist": True}}
        for alias, found in holders.items()
        for old in sorted(found - {index})
    ]
    actions += [
        {"add": {"index": index, "alias": aliases[0]}},
        {"add": {"index": index, "alias": aliases[1], "is_write_index": True}},
    ]
    client().indices.update_aliases(actions=actions)
    return sorted(set().union(*holders.values()) - {index})


def versioned_indices(tenant: str) -> dict[str, set[str]]:
    """The tenant's versioned indices, oldest first, with their aliases.

    Other tenants' never match, even one whose id starts with this one's.
    """
    pattern = _version_pattern(tenant)
    found = client().indices.get_alias(index=f"{read_alias(tenant)}.v*", allow_no_indices=True)
    return {
        index: set(found[index]["aliases"]) for index in sorted(found) if pattern.fullmatch(index)
    }


def prune_indices(tenant: str, keep: int) -> list[str]:
    """Delete the tenant's versioned indices older than the newest `keep`, except any that holds
    an alias (readers or writers still use it). Returns the deleted indices.
    """
    versions = versioned_indices(tenant)
    older = list(versions)[: max(len(versions) - keep, 0)]
    doomed = [index for index in older if not versions[index]]
    for index in doomed:
        delete_index(index)
    return doomed


def delete_index(index: str) -> None:
    client().indices.delete(index=index, ignore_unavailable=True)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class SearchHit:
    sku: str
    name: str | None
    price: float | None
    currency: str | None
    category: str | None
    score: float


@dataclass(frozen=True)
class SearchResult:
    """Ranked hits, how many products matched in all, and their count per category."""

    total: int
    hits: list[SearchHit]
    facets: dict[str, int]


def search(
    tenant: str,
    text: str,
    *,
    category: str | None = None,
    min_price: float | None = None,
    max_price: float | None = None,
    size: int = 10,
) -> SearchResult:
    """Products of a tenant matching `text`, best first, through the read alias.

    The text goes into a `multi_match` query, so query syntax in it (`name:*`, JSON) is just
    words to match; blank text matches every product. The category filter also takes a parent
    category. Facets count categories over the text and price filters but not the category
    filter (a `post_filter`), so a shopper sees which other categories match too.
    """
    match: dict[str, Any] = {"match_all": {}}
    if text.strip():
        match = {"multi_match": {"query": text, "fields": ["name^3", "description", "tags", "sku"]}}
    price: dict[str, float] = {}
    if min_price is not None:
        price["gte"] = min_price
    if max_price is not None:
        price["lte"] = max_price
    response = client().search(
        index=read_alias(tenant),
        query={
            "bool": {
                "must": [match],
                "filter": [{"range": {"price": price}}] if price else [],
            }
        },
        post_filter={"term": {"categories": category}} if category else None,
        aggregations={"categories": {"terms": {"field": "category", "size": FACET_SIZE}}},
        track_total_hits=True,
        size=size,
    )
    hits = [
        SearchHit(
            sku=hit["_source"]["sku"],
            name=hit["_source"].get("name"),
            price=_number(hit["_source"].get("price")),
            currency=hit["_source"].get("currency"),
            category=hit["_source"].get("category"),
            score=hit["_score"],
        )
        for hit in response["hits"]["hits"]
    ]
    buckets = response["aggregations"]["categories"]["buckets"]
    return SearchResult(
        total=response["hits"]["total"]["value"],
        hits=hits,
        facets={bucket["key"]: bucket["doc_count"] for bucket in buckets},
    )


# --- consistency: the active index as a check reads it, and targeted repairs -------------------


def active_index(tenant: str) -> str | None:
    """The index behind the tenant's read alias: what searches see now."""
    return next(iter(_holders(read_alias(tenant))), None)


def active_content(tenant: str) -> Iterator[tuple[str, str | None]]:
    """(sku, content_hash) of every document readers see, streamed (nothing if no index)."""
    index = active_index(tenant)
    if index is None:
        return iter(())
    return content_hashes(index)


def delete_documents(index: str, skus: Iterable[str]) -> int:
    """Delete documents by sku from one index (missing ones are fine), then refresh it."""
    actions = ({"_op_type": "delete", "_index": index, "_id": sku} for sku in skus)
    deleted, _ = helpers.bulk(client(), actions, raise_on_error=False, ignore_status=(404,))
    client().indices.refresh(index=index)
    return deleted
