"""Elasticsearch: the product search index, versioned indices behind per-tenant aliases.

Each tenant's products live in `products-{tenant}-{version}` indices. Readers use the alias
`products-{tenant}`; writers use `products-{tenant}-write`. A reindex builds a new version and
moves both aliases in one atomic `update_aliases` call, so readers never see a half-built index.
Every index gets its mapping from one composable index template.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError, helpers

from polyflow.settings import public_address, settings
from stores.health import StoreHealth, measure
from stores.tenancy import check_tenant

STORE = "elasticsearch"
TEMPLATE = "polyflow-products"
INDEX_PREFIX = "products-"

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
    return f"{INDEX_PREFIX}{check_tenant(tenant)}"


def write_alias(tenant: str) -> str:
    return f"{read_alias(tenant)}-write"


def new_index_name(tenant: str) -> str:
    """A fresh versioned index name; versions sort by creation time."""
    return f"{read_alias(tenant)}-{datetime.now(UTC):%Y%m%d%H%M%S%f}"


@cache
def client() -> Elasticsearch:
    """The process-wide client; it pools HTTP connections."""
    config = settings()
    return Elasticsearch(
        config.elasticsearch_url.get_secret_value(),
        request_timeout=max(config.connect_timeout * 10, 30),
        retry_on_timeout=True,
        max_retries=2,
    )


def close() -> None:
    if client.cache_info().currsize:
        client().close()
        client.cache_clear()


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


def index_products(tenant: str, products: Iterable[Mapping[str, Any]]) -> int:
    """Bulk-index products into the tenant's write alias; the sku is the document id."""
    actions = (
        {"_index": write_alias(tenant), "_id": product["sku"], "_source": dict(product)}
        for product in products
    )
    indexed, _ = helpers.bulk(client(), actions, chunk_size=2000, raise_on_error=True)
    return indexed


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
