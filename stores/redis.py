"""Redis: derived, fast-read data (product cache, order status, sessions, recommendations).

Every key starts with `pf:{tenant}:` so tenants never share a key and one tenant's keys can be
scanned or dropped alone. Writes go through pipelines: one round trip per chunk, not per key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script

from domain.settings import Settings, public_address, settings
from domain.tenancy import check_tenant
from stores import clients
from stores.health import StoreHealth, measure

STORE = "redis"
PRODUCT_TTL_SECONDS = 24 * 3600


def key(tenant: str, *parts: str) -> str:
    """The tenant-scoped key for `parts`, e.g. key("acme", "product", "SKU-1")."""
    return ":".join(("pf", check_tenant(tenant), *parts))


def _connect(config: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        config.redis_url.reveal(),
        socket_connect_timeout=config.connect_timeout,
        socket_timeout=config.connect_timeout * 2,
        health_check_interval=30,
        decode_responses=True,
    )


def client() -> redis.Redis:
    """The process-wide client for the configured URL (see `stores.clients`); redis-py pools
    its connections."""
    return clients.shared(STORE, _connect, redis.Redis.close)


def close() -> None:
    clients.close(STORE)


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


def _guarded_hset() -> Script:
    """Registered on the current client (a Script is bound to one), so it follows an override;
    registering only hashes the text."""
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


# -- storefront events: live counters and sessions (analytics) ------------------------------

TRACK_EVENT = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
local expire_at = tonumber(ARGV[3])
redis.call('EXPIREAT', KEYS[1], expire_at)
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('EXPIREAT', KEYS[2], expire_at)
local at, now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if at + ttl <= now then return 1 end
if ARGV[2] == 'product_viewed' then redis.call('HINCRBY', KEYS[3], 'pages_viewed', 1) end
if ARGV[2] == 'added_to_cart' then redis.call('HINCRBY', KEYS[3], 'cart:' .. ARGV[7], ARGV[8]) end
local last = tonumber(redis.call('HGET', KEYS[3], 'last_seen') or '0')
if at > last then
  redis.call('HSET', KEYS[3], 'last_seen', ARGV[4], 'user_id', ARGV[9])
  redis.call('EXPIREAT', KEYS[3], math.floor(at + ttl))
elseif redis.call('TTL', KEYS[3]) < 0 then
  redis.call('EXPIREAT', KEYS[3], math.floor(last + ttl))
end
return 1
"""
"""Count an event once: its id joins its hour's seen set, or nothing happens (a replay). A new
event bumps its (type, hour) counter and refreshes its session, unless the session has expired
by the event's own time: replayed old events never revive a session or move last_seen back."""


def track_events(
    tenant: str,
    events: Sequence[Any],
    now: float,
    counter_ttl: float,
    session_ttl: float,
) -> int:
    """Live counters per (tenant, type, hour) and session summaries for storefront events
    (`domain.analytics.StorefrontEvent`) whose hour still has live counters; one pipeline.
    Returns how many events were counted for the first time."""
    script = client().register_script(TRACK_EVENT)
    pipe = client().pipeline(transaction=False)
    sent = 0
    for event in events:
        hour = int(event.occurred_at.timestamp()) // 3600 * 3600
        expire_at = hour + 3600 + int(counter_ttl)
        if expire_at <= now:
            continue
        keys = [
            key(tenant, "events", "seen", str(hour)),
            key(tenant, "counters", str(hour)),
            key(tenant, "session", event.session_id),
        ]
        args = [
            event.event_id,
            event.event_type,
            expire_at,
            repr(event.occurred_at.timestamp()),
            repr(now),
            int(session_ttl),
            event.sku or "",
            event.quantity,
            event.user_id,
        ]
        script(keys=keys, args=args, client=pipe)
        sent += 1
    return sum(pipe.execute()) if sent else 0


def live_counters(tenant: str, hour_epoch: int) -> dict[str, int]:
    """Events per type in one hour (epoch seconds of its start), while its counters live."""
    counts = client().hgetall(key(tenant, "counters", str(hour_epoch)))
    return {event_type: int(n) for event_type, n in counts.items()}


def session_summary(tenant: str, session_id: str) -> dict[str, str]:
    """A live session's summary: last_seen (epoch), user_id, pages_viewed, cart:<sku> units."""
    return client().hgetall(key(tenant, "session", session_id))


# --- recommendations ---------------------------------------------------------------------------
#
# Each rebuild writes its lists under its own generation's keys, `rec:<generation>:product:<sku>`
# (bought together and similar) and `rec:<generation>:customer:<id>` (for you), which no reader
# looks at until one SET moves the tenant's pointer `rec-generation` onto it. Then every other
# generation's keys get a TTL: a reader that read the old pointer a moment ago still finds its
# list, and nothing old outlives the grace period.

RECOMMENDATION_GRACE_SECONDS = 3600
RECOMMENDATION_BATCH = 5000
PRODUCT_LISTS = "product"
CUSTOMER_LISTS = "customer"


def _recommendation_pointer(tenant: str) -> str:
    return key(tenant, "rec-generation")


def publish_recommendations(
    tenant: str,
    generation: str,
    products: Mapping[str, Any],
    customers: Mapping[str, Any],
) -> int:
    """Write a generation's lists under its own keys, pipelined in batches; invisible to readers
    until `switch_recommendations`. Returns how many keys were written."""
    entries = [(key(tenant, "rec", generation, PRODUCT_LISTS, sku), lists)
               for sku, lists in products.items()]  # fmt: skip
    entries += [(key(tenant, "rec", generation, CUSTOMER_LISTS, customer_id), lists)
                for customer_id, lists in customers.items()]  # fmt: skip
    for start in range(0, len(entries), RECOMMENDATION_BATCH):
        pipe = client().pipeline(transaction=False)
        for name, value in entries[start : start + RECOMMENDATION_BATCH]:
            pipe.set(name, json.dumps(value, separators=(",", ":")))
        pipe.execute()
    return len(entries)


def switch_recommendations(
    tenant: str, generation: str, grace: int = RECOMMENDATION_GRACE_SECONDS
) -> str | None:
    """Point readers at `generation` with one SET, then give every other generation's keys of the
    tenant (the replaced one, and any a failed run left) a TTL. Returns the replaced generation."""
    redis_client = client()
    previous = redis_client.set(_recommendation_pointer(tenant), generation, get=True)
    current = key(tenant, "rec", generation, "")
    pipe = redis_client.pipeline(transaction=False)
    for name in redis_client.scan_iter(match=key(tenant, "rec", "*"), count=5000):
        if not name.startswith(current):
            pipe.expire(name, grace, nx=True)
        if len(pipe) >= RECOMMENDATION_BATCH:
            pipe.execute()
    pipe.execute()
    return previous


def recommendation_generation(tenant: str) -> str | None:
    return client().get(_recommendation_pointer(tenant))


def recommendation_lists(tenant: str, kind: str, name: str) -> tuple[str | None, Any]:
    """(active generation, the published lists of a product or customer); (None, None) when
    nothing is published, (generation, None) when the generation has no list for it."""
    generation = client().get(_recommendation_pointer(tenant))
    if generation is None:
        return None, None
    value = client().get(key(tenant, "rec", generation, kind, name))
    return generation, None if value is None else json.loads(value)


# --- consistency: what a check streams, and what a repair clears ------------------------------
#
# Redis cannot aggregate, so a check streams one kind of key of one tenant with SCAN (`_type`
# keeps other kinds sharing the prefix out, such as a customer's recent-orders sorted set) and
# reads each page of keys with one pipeline: memory holds one page, not the tenant.

CONSISTENCY_PAGE = 1000


def _scan_pages(tenant: str, kind: str, key_type: str) -> Iterator[list[str]]:
    page: list[str] = []
    pattern = key(tenant, kind, "*")
    for name in client().scan_iter(match=pattern, count=CONSISTENCY_PAGE, _type=key_type):
        page.append(name)
        if len(page) >= CONSISTENCY_PAGE:
            yield page
            page = []
    if page:
        yield page


def scan_hashes(
    tenant: str, kind: str, fields: Sequence[str]
) -> Iterator[tuple[str, list[str | None]]]:
    """(id, values of `fields`) of every hash `key(tenant, kind, id)`, a pipelined page at a
    time."""
    prefix = len(key(tenant, kind, ""))
    for page in _scan_pages(tenant, kind, "hash"):
        pipe = client().pipeline(transaction=False)
        for name in page:
            pipe.hmget(name, list(fields))
        for name, values in zip(page, pipe.execute(), strict=True):
            yield name[prefix:], values


def scan_cached_products(tenant: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(sku, cached product) of every live product cache entry; None for one that expired
    between the scan and the read."""
    prefix = len(key(tenant, "product", ""))
    for page in _scan_pages(tenant, "product", "string"):
        for name, value in zip(page, client().mget(page), strict=True):
            yield name[prefix:], json.loads(value) if value else None


def delete_keys(tenant: str, kind: str, ids: Sequence[str]) -> int:
    """Delete `key(tenant, kind, id)` for each id (a repair clears a drifted entry before it
    re-derives it, so the version guard lets the truth back in)."""
    if not ids:
        return 0
    return client().delete(*(key(tenant, kind, record_id) for record_id in ids))


def read_hashes(
    tenant: str, kind: str, ids: Sequence[str], fields: Sequence[str]
) -> Iterator[tuple[str, list[str | None]]]:
    """(id, values of `fields`) of the hashes `key(tenant, kind, id)` that exist, by point reads
    pipelined a page at a time: a check reading the records it already knows the ids of."""
    for start in range(0, len(ids), CONSISTENCY_PAGE):
        page = ids[start : start + CONSISTENCY_PAGE]
        pipe = client().pipeline(transaction=False)
        for record_id in page:
            pipe.hmget(key(tenant, kind, record_id), list(fields))
        for record_id, values in zip(page, pipe.execute(), strict=True):
            if any(value is not None for value in values):
                yield record_id, values
