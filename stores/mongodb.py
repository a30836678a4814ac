"""MongoDB: the source of truth for catalog content, plus the quarantine of rejected import rows.

Written to run on real MongoDB and on FerretDB (what the local stack runs): no transactions,
`$group` only with `$sum`/`$count`, no `$text`, no projection in `find_one_and_update`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.database import Database

from polyflow.settings import public_address, settings
from stores.health import StoreHealth, measure
from stores.tenancy import check_tenant

STORE = "mongodb"
PRODUCTS = "products"
IMPORT_REJECTS = "import_rejects"


@cache
def client() -> MongoClient:
    """The process-wide client; pymongo pools its connections."""
    config = settings()
    timeout_ms = int(config.connect_timeout * 1000)
    return MongoClient(
        config.mongodb_url.get_secret_value(),
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        tz_aware=True,
    )


def database() -> Database:
    return client().get_default_database("polyflow")


def close() -> None:
    if client.cache_info().currsize:
        client().close()
        client.cache_clear()


def bootstrap() -> None:
    """Create the collections' indexes; `create_index` is a no-op for an existing identical one."""
    db = database()
    db[PRODUCTS].create_index(
        [("tenant", ASCENDING), ("sku", ASCENDING)], unique=True, name="tenant_sku"
    )
    db[PRODUCTS].create_index(
        [("tenant", ASCENDING), ("updated_at", ASCENDING)], name="tenant_updated_at"
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


def upsert_products(tenant: str, products: Sequence[Mapping[str, Any]]) -> UpsertCounts:
    """Upsert products keyed by (tenant, sku): one read of the chunk's hashes, one bulk write.

    A product whose `content_hash` is unchanged is not written at all, so its version and
    timestamps stay as they were; a changed one is replaced field by field and its version bumped.
    """
    check_tenant(tenant)
    collection = database()[PRODUCTS]
    stored = {
        doc["sku"]: doc.get("content_hash")
        for doc in collection.find(
            {"tenant": tenant, "sku": {"$in": [p["sku"] for p in products]}},
            {"_id": False, "sku": True, "content_hash": True},
        )
    }
    changed = [p for p in products if stored.get(p["sku"], object()) != p["content_hash"]]
    operations = [
        UpdateOne(
            {"tenant": tenant, "sku": product["sku"]},
            {
                "$set": {k: v for k, v in product.items() if k not in ("tenant", "sku", "version")},
                "$inc": {"version": 1},
            },
            upsert=True,
        )
        for product in changed
    ]
    if operations:
        collection.bulk_write(operations, ordered=False)
    inserted = sum(1 for p in changed if p["sku"] not in stored)
    return UpsertCounts(
        inserted=inserted,
        updated=len(changed) - inserted,
        unchanged=len(products) - len(changed),
    )


def find_products(tenant: str, skus: list[str]) -> dict[str, dict[str, Any]]:
    """Products by sku for one tenant, without Mongo's `_id`."""
    check_tenant(tenant)
    cursor = database()[PRODUCTS].find(
        {"tenant": tenant, "sku": {"$in": list(skus)}}, {"_id": False}
    )
    return {doc["sku"]: doc for doc in cursor}
