"""MongoDB: the source of truth for catalog content, plus the quarantine of rejected import rows.

Written to run on real MongoDB and on FerretDB (what the local stack runs): no transactions,
`$group` only with `$sum`/`$count`, no `$text`, no projection in `find_one_and_update`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from domain.settings import Settings, public_address, settings
from domain.tenancy import check_tenant
from stores import clients
from stores.health import StoreHealth, measure

STORE = "mongodb"
PRODUCTS = "products"
IMPORT_REJECTS = "import_rejects"
SEARCH_WATERMARKS = "search_watermarks"
CUSTOMERS = "customers"


def _connect(config: Settings) -> MongoClient:
    timeout_ms = int(config.connect_timeout * 1000)
    return MongoClient(
        config.mongodb_url.reveal(),
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        # A server that accepts connections but stops answering fails the call, never hangs it.
        socketTimeoutMS=int(config.call_timeout * 1000),
        tz_aware=True,
    )


def client() -> MongoClient:
    """The process-wide client for the configured URL (see `stores.clients`); pymongo pools
    its connections."""
    return clients.shared(STORE, _connect, MongoClient.close)


def database() -> Database:
    return client().get_default_database("polyflow")


def close() -> None:
    clients.close(STORE)


def bootstrap() -> None:
    """Create the collections' indexes; `create_index` is a no-op for an existing identical one."""
    db = database()
    db[PRODUCTS].create_index(
        [("tenant", ASCENDING), ("sku", ASCENDING)], unique=True, name="tenant_sku"
    )
    db[PRODUCTS].create_index(
        [("tenant", ASCENDING), ("updated_at", ASCENDING)], name="tenant_updated_at"
    )
    db[CUSTOMERS].create_index(
        [("tenant", ASCENDING), ("customer_id", ASCENDING)], unique=True, name="tenant_customer"
    )
    db[IMPORT_REJECTS].create_index(
        [("tenant", ASCENDING), ("source", ASCENDING), ("line", ASCENDING)],
        unique=True,
        name="tenant_source_line",
    )


def health() -> StoreHealth:
    def check() -> tuple[str, str]:
        db = database()
        info = db.command("buildInfo")
        version = info["version"]
        if "ferretdbVersion" in info:
            version = f"FerretDB {info['ferretdbVersion'].lstrip('v')} (MongoDB {info['version']})"
        return version, f"{db[PRODUCTS].estimated_document_count()} products"

    return measure(STORE, public_address(settings().mongodb_url), check)


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    versions: dict[str, int] = field(default_factory=dict, compare=False)
    """sku -> the version MongoDB now holds, for version-guarded writes to derived stores."""


NOT_CATALOG_CONTENT = frozenset({"tenant", "sku", "version", "stock", "updated_at"})
"""Fields an upsert never copies from the input: the key, what MongoDB owns, and inventory."""

WRITE_BATCH = 40
"""Statements per bulk write command. FerretDB v1 holds one PostgreSQL connection per statement
until the command ends, and 50 or more in one command exhaust its pool and stall the server."""

POINT_READERS = 8
"""Concurrent point reads: an equality lookup is what FerretDB serves from an index, while `$in`
is evaluated by scanning the collection."""

DUPLICATE_KEY = 11000


def _bulk_write(collection: Collection, operations: Sequence[UpdateOne]) -> None:
    for start in range(0, len(operations), WRITE_BATCH):
        collection.bulk_write(operations[start : start + WRITE_BATCH], ordered=False)


def _insert_new(
    collection: Collection, tenant: str, products: Sequence[Mapping[str, Any]], now: datetime
) -> list[str]:
    """Insert every product as a new document at version 1; return the skus that already existed.

    The unique (tenant, sku) index turns an existing product into a duplicate-key error, so a
    first import costs one bulk insert, and no two writers can both create the same product.
    """
    documents = [
        {
            **{k: v for k, v in product.items() if k not in NOT_CATALOG_CONTENT},
            "tenant": tenant,
            "sku": product["sku"],
            "version": 1,
            "updated_at": now,
        }
        for product in products
    ]
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        others = [e for e in error.details["writeErrors"] if e["code"] != DUPLICATE_KEY]
        if others:
            raise
        return [products[e["index"]]["sku"] for e in error.details["writeErrors"]]
    return []


def _products_by_sku(
    tenant: str, skus: Sequence[str], projection: Mapping[str, bool]
) -> dict[str, dict[str, Any]]:
    """The given products of one tenant that exist, by sku, read by concurrent point lookups."""
    collection = database()[PRODUCTS]
    with ThreadPoolExecutor(POINT_READERS) as pool:
        found = pool.map(
            lambda sku: collection.find_one({"tenant": tenant, "sku": sku}, projection), skus
        )
        return {doc["sku"]: doc for doc in found if doc is not None}


def upsert_products(tenant: str, products: Sequence[Mapping[str, Any]]) -> UpsertCounts:
    """Upsert products keyed by (tenant, sku): new ones inserted, changed ones updated.

    A product whose `content_hash` is unchanged is not written at all, so its version and
    `updated_at` stay as they were; a changed one is updated field by field, its version bumped
    and `updated_at` set (incremental search reindexing reads it). The update matches only while
    the stored hash differs, so replaying it changes nothing.
    """
    check_tenant(tenant)
    collection = database()[PRODUCTS]
    now = datetime.now(UTC)
    existing = _insert_new(collection, tenant, products, now)
    stored = _products_by_sku(
        tenant, existing, {"_id": False, "sku": True, "content_hash": True, "version": True}
    )
    by_sku = {product["sku"]: product for product in products}
    changed = [
        by_sku[sku]
        for sku, doc in stored.items()
        if doc.get("content_hash") != by_sku[sku]["content_hash"]
    ]
    _bulk_write(
        collection,
        [
            UpdateOne(
                {
                    "tenant": tenant,
                    "sku": product["sku"],
                    "content_hash": {"$ne": product["content_hash"]},
                },
                {
                    "$set": {
                        **{k: v for k, v in product.items() if k not in NOT_CATALOG_CONTENT},
                        "updated_at": now,
                    },
                    "$inc": {"version": 1},
                },
            )
            for product in changed
        ],
    )
    versions = {sku: 1 for sku in by_sku}
    versions |= {sku: doc.get("version", 0) for sku, doc in stored.items()}
    for product in changed:
        versions[product["sku"]] += 1
    return UpsertCounts(
        inserted=len(by_sku) - len(existing),
        updated=len(changed),
        unchanged=len(existing) - len(changed),
        versions=versions,
    )


def quarantine(rejects: Sequence[Mapping[str, Any]]) -> int:
    """Store rejected import rows keyed by (tenant, source, line), as current rejects;
    re-importing updates them in place."""
    operations = [
        UpdateOne(
            {"tenant": check_tenant(r["tenant"]), "source": r["source"], "line": r["line"]},
            {"$set": {**r, "rejected_at": datetime.now(UTC), "superseded_at": None}},
            upsert=True,
        )
        for r in rejects
    ]
    _bulk_write(database()[IMPORT_REJECTS], operations)
    return len(operations)


def supersede_rejects(tenant: str, source: str) -> None:
    """A new import of `source` starts: its earlier rejects stop being current. Those it rejects
    again become current again; a row fixed in the file stays in the history, superseded."""
    database()[IMPORT_REJECTS].update_many(
        {"tenant": check_tenant(tenant), "source": source, "superseded_at": None},
        {"$set": {"superseded_at": datetime.now(UTC)}},
    )


def rejects_of(tenant: str, source: str, current: bool = True) -> list[dict[str, Any]]:
    """The quarantined rows of one source file's latest import (or, with `current=False`, of
    every import), in line order."""
    query: dict[str, Any] = {"tenant": check_tenant(tenant), "source": source}
    if current:
        query["superseded_at"] = None
    cursor = database()[IMPORT_REJECTS].find(query, {"_id": False})
    return sorted(cursor, key=lambda r: r["line"])


def find_products(tenant: str, skus: list[str]) -> dict[str, dict[str, Any]]:
    """Products by sku for one tenant, without Mongo's `_id`: an order's lines or a chunk's
    skus, read by point lookups rather than an `$in` that scans the tenant's catalog."""
    return _products_by_sku(check_tenant(tenant), list(dict.fromkeys(skus)), {"_id": False})


def product_page(
    tenant: str, after_sku: str | None, limit: int, updated_since: datetime | None = None
) -> list[dict[str, Any]]:
    """Up to `limit` products in sku order after `after_sku` (keyset paging: each page is one
    indexed range read however deep it is), optionally only those updated since a time.
    """
    query: dict[str, Any] = {"tenant": check_tenant(tenant)}
    if after_sku is not None:
        query["sku"] = {"$gt": after_sku}
    if updated_since is not None:
        query["updated_at"] = {"$gte": updated_since}
    cursor = database()[PRODUCTS].find(query, {"_id": False}).sort("sku", ASCENDING).limit(limit)
    return list(cursor)


def content_hashes(tenant: str, batch_size: int = 5000) -> Iterator[tuple[str, str | None]]:
    """(sku, content_hash) of every product of a tenant, streamed a cursor batch at a time."""
    cursor = database()[PRODUCTS].find(
        {"tenant": check_tenant(tenant)}, {"_id": False, "sku": True, "content_hash": True}
    )
    for doc in cursor.batch_size(batch_size):
        yield doc["sku"], doc.get("content_hash")


def search_watermark(tenant: str) -> datetime | None:
    """When the last successful search reindex of a tenant started reading its products."""
    doc = database()[SEARCH_WATERMARKS].find_one({"_id": check_tenant(tenant)})
    return doc["watermark"] if doc else None


def advance_search_watermark(tenant: str, watermark: datetime) -> None:
    """Record a tenant's search watermark; `$max` only moves it forward, so a slow run that
    finishes after a newer one cannot move it back.
    """
    database()[SEARCH_WATERMARKS].update_one(
        {"_id": check_tenant(tenant)}, {"$max": {"watermark": watermark}}, upsert=True
    )


def upsert_customers(tenant: str, profiles: Sequence[Mapping[str, Any]]) -> None:
    """Upsert customer profiles keyed by (tenant, customer_id), only over an older version.

    New customers go in with one `insert_many`; a duplicate key marks one that exists, which is
    then updated only while its stored version is older, so replays and late events change
    nothing. (An upserting update that collides with the unique key is not an option: FerretDB
    answers it with a malformed reply.)
    """
    check_tenant(tenant)
    latest: dict[str, Mapping[str, Any]] = {}
    for profile in profiles:
        current = latest.get(profile["customer_id"])
        if current is None or current["version"] < profile["version"]:
            latest[profile["customer_id"]] = profile
    if not latest:
        return
    collection = database()[CUSTOMERS]
    documents = [{**profile, "tenant": tenant} for profile in latest.values()]
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if any(e["code"] != DUPLICATE_KEY for e in error.details["writeErrors"]):
            raise
        # insert_many gave each document an `_id`; an update must not try to change it
        existing = [
            {k: v for k, v in documents[e["index"]].items() if k != "_id"}
            for e in error.details["writeErrors"]
        ]
        _bulk_write(
            collection,
            [
                UpdateOne(
                    {
                        "tenant": tenant,
                        "customer_id": doc["customer_id"],
                        "version": {"$lt": doc["version"]},
                    },
                    {"$set": doc},
                )
                for doc in existing
            ],
        )


def find_customer(tenant: str, customer_id: str) -> dict[str, Any] | None:
    return database()[CUSTOMERS].find_one(
        {"tenant": check_tenant(tenant), "customer_id": customer_id}, {"_id": False}
    )


RECOMMENDATION_FIELDS = {
    "_id": False,
    "sku": True,
    "category": True,
    "tags": True,
    "attributes": True,
}


def catalog_features(tenant: str, batch_size: int = 5000) -> list[dict[str, Any]]:
    """sku, category, tags and attributes of every product of a tenant: what similarity needs,
    read with one cursor (no sort, which FerretDB would do by scanning)."""
    cursor = database()[PRODUCTS].find({"tenant": check_tenant(tenant)}, RECOMMENDATION_FIELDS)
    return list(cursor.batch_size(batch_size))


def catalog_tenants() -> list[str]:
    """The tenants that have a catalog, sorted."""
    return sorted(database()[PRODUCTS].distinct("tenant"))


# --- consistency: what a check streams, and what a repair clears ------------------------------


def updated_since(tenant: str, since: datetime) -> set[str]:
    """The skus of a tenant's products written at or after `since`: catalog writes still on
    their way to the derived stores when a check started."""
    cursor = database()[PRODUCTS].find(
        {"tenant": check_tenant(tenant), "updated_at": {"$gte": since}}, {"_id": False, "sku": True}
    )
    return {doc["sku"] for doc in cursor}


def customer_records(tenant: str, batch_size: int = 5000) -> Iterator[dict[str, Any]]:
    """customer_id, version, email, name of every customer profile of a tenant, streamed."""
    cursor = database()[CUSTOMERS].find(
        {"tenant": check_tenant(tenant)},
        {"_id": False, "customer_id": True, "version": True, "email": True, "name": True},
    )
    yield from cursor.batch_size(batch_size)


def delete_customers(tenant: str, customer_ids: Sequence[str]) -> None:
    """Delete these profiles of a tenant, one equality match each (what FerretDB can index)."""
    collection = database()[CUSTOMERS]
    for customer_id in customer_ids:
        collection.delete_one({"tenant": check_tenant(tenant), "customer_id": customer_id})


def catalog_rows(tenant: str, batch_size: int = 5000) -> Iterator[dict[str, Any]]:
    """sku, name, price, currency, category of every product of a tenant, streamed: what the
    graph's Product nodes are derived from."""
    cursor = database()[PRODUCTS].find(
        {"tenant": check_tenant(tenant)},
        {"_id": False, **dict.fromkeys(("sku", "name", "price", "currency", "category"), True)},
    )
    yield from cursor.batch_size(batch_size)
