"""Redis: derived, fast-read data (product cache, order status, sessions, recommendations).

Every key starts with `pf:{tenant}:` so tenants never share a key and one tenant's keys can be
scanned or dropped alone. Writes go through pipelines: one round trip per chunk, not per key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from redis.commands.core import Script

from domain.settings import public_address, settings
from domain.tenancy import check_tenant
from stores.health import StoreHealth, measure

STORE = "redis"
PRODUCT_TTL_SECONDS = 24 * 3600


def key(tenant: str, *parts: str) -> str:
    """The tenant-scoped key for `parts`, e.g. key("acme", "product", "SKU-1")."""
    return ":".join(("pf", check_tenant(tenant), *parts))


@cache
def client() -> redis.Redis:
    """The process-wide client; redis-py pools its connections."""
    config = settings()
    return redis.Redis.from_url(
        config.redis_url.get_secret_value(),
        socket_connect_timeout=config.connect_timeout,
        socket_timeout=config.connect_timeout * 2,
        health_check_interval=30,
        decode_responses=True,
    )


def close() -> None:
    if client.cache_info().currsize:
        client().close()
        client.cache_clear()


def bootstrap() -> None:
    """Redis has no schema; bootstrapping only proves the server answers."""
    client().ping()


def health() -> StoreHealth:
    def check() -> tuple[str, str]:
        redis_client = client()
        version = redis_client.info("server")["redis_version"]
        return version, f"{redis_client.dbsize()} keys"

    return measure(STORE, public_address(settings().redis_url), check)


def cache_products(
    tenant: str, products: Mapping[str, Mapping[str, Any]], ttl: int = PRODUCT_TTL_SECONDS
) -> None:
    """Store products as JSON under their cache keys, with a TTL, in one pipelined round trip."""
    pipe = client().pipeline(transaction=False)
    for sku, product in products.items():
        pipe.set(key(tenant, "product", sku), json.dumps(product, default=str), ex=ttl)
    pipe.execute()


def cached_products(tenant: str, skus: list[str]) -> dict[str, dict[str, Any]]:
    """The cached products among `skus` (missing or expired ones are absent)."""
    if not skus:
        return {}
    values = client().mget([key(tenant, "product", sku) for sku in skus])
    return {sku: json.loads(value) for sku, value in zip(skus, values, strict=True) if value}


GUARDED_HSET = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], unpack(ARGV, 2))
return 1
"""
"""Set a hash's fields only if it holds an older version: replays and late events change nothing."""

RECENT_ORDERS = 50


@dataclass(frozen=True)
class Versioned:
    """A hash under `key(tenant, *parts)` at a version, e.g. an order's status."""

    parts: tuple[str, ...]
    version: int
    fields: Mapping[str, str]


@cache
def _guarded_hset() -> Script:
    return client().register_script(GUARDED_HSET)


def put_versioned(tenant: str, entries: Sequence[Versioned]) -> None:
    """Write many version-guarded hashes in one pipelined round trip."""
    script = _guarded_hset()
    pipe = client().pipeline(transaction=False)
    for entry in entries:
        fields = [item for pair in entry.fields.items() for item in pair]
        script(keys=[key(tenant, *entry.parts)], args=[entry.version, *fields], client=pipe)
    pipe.execute()


def get_versioned(tenant: str, *parts: str) -> dict[str, str]:
    return client().hgetall(key(tenant, *parts))


def remember_orders(tenant: str, orders: Sequence[tuple[str, str, float]]) -> None:
    """Add (customer, order id, placed-at timestamp) to each customer's recent orders, newest
    `RECENT_ORDERS` kept; adding an order twice keeps one entry."""
    pipe = client().pipeline(transaction=False)
    for customer_id, order_id, placed_at in orders:
        recent = key(tenant, "customer", customer_id, "orders")
        pipe.zadd(recent, {order_id: placed_at})
        pipe.zremrangebyrank(recent, 0, -RECENT_ORDERS - 1)
    pipe.execute()


def recent_orders(tenant: str, customer_id: str) -> list[str]:
    """A customer's recent order ids, newest first."""
    return client().zrevrange(key(tenant, "customer", customer_id, "orders"), 0, -1)
