"""Consistency check benchmark: the bucketed check against a naive full compare.

    .venv/bin/python -m bench.consistency --skus 50000

One tenant (`bench-consistency`), its inventory in PostgreSQL and its stock levels delivered to
Redis through the outbox projection (and marked delivered); then 0.1% of the Redis entries are
drifted (half deleted, half made stale). Both ways must find the same drift:

- bucketed: `tasks.consistency.compare` on `inventory-redis`: PostgreSQL aggregates per bucket in
  SQL, Redis is streamed into bucket digests, then only the differing buckets are read again;
- naive: every record of both sides read into memory, then compared.

Prints time and peak Python heap (tracemalloc) of each, the time with zero drift, and
`ratio naive/bucketed: X`. Only the inventory pair is measured here (the other pairs use the same
machinery); this is not the 200k-product / 20k-order run of the issue.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from domain.consistency import classify, signature
from stores import postgres, redis
from tasks.consistency import PAIRS, compare
from tasks.outbox import PROJECTIONS, ROUTES

TENANT = "bench-consistency"
CHUNK = 10_000


def measured(action: Callable[[], Any]) -> tuple[Any, float, float]:
    tracemalloc.start()
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / 2**20


def seed(skus: int) -> list[str]:
    """Inventory in PostgreSQL, delivered to Redis through the projection and marked delivered."""
    postgres.ensure_tenant(TENANT)
    names = [f"SKU-{n:07d}" for n in range(skus)]
    level = int(time.time()) % 1000 + 1  # a new level each run, so every row changes
    for start in range(0, skus, CHUNK):
        chunk = names[start : start + CHUNK]
        event_ids = postgres.set_inventory(TENANT, dict.fromkeys(chunk, level), ROUTES)
        if not event_ids:
            continue
        with postgres.claim_pending([redis.STORE], len(event_ids), event_ids) as claim:
            messages = claim.messages_for(redis.STORE)
            PROJECTIONS[redis.STORE](messages)
            claim.delivered(redis.STORE, [m.event_id for m in messages])
    return names


def drift(names: list[str]) -> tuple[list[str], list[str]]:
    step = 1000
    drifted = names[::step]
    deleted, stale = drifted[::2], drifted[1::2]
    redis.delete_keys(TENANT, "stock", deleted)
    pipe = redis.client().pipeline(transaction=False)
    for sku in stale:
        pipe.hset(redis.key(TENANT, "stock", sku), "on_hand", "-1")
    pipe.execute()
    return sorted(deleted), sorted(stale)


def naive() -> Any:
    with postgres.engine().connect() as conn:
        rows = conn.execute(
            text("SELECT sku, version, on_hand FROM inventory WHERE tenant_id = :tenant"),
            {"tenant": TENANT},
        )
        source = {sku: signature(version, on_hand) for sku, version, on_hand in rows}
    derived = {
        sku: signature(*values)
        for sku, values in redis.scan_hashes(TENANT, "stock", ("version", "on_hand"))
    }
    return classify(source, derived)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skus", type=int, default=50_000)
    args = parser.parse_args()
    pair = PAIRS["inventory-redis"]

    _, seconds, _ = measured(lambda: seed(args.skus))
    print(f"seeded {args.skus} skus in PostgreSQL and Redis in {seconds:.1f} s")
    started_at = datetime.now(UTC)
    clean, clean_s, clean_mb = measured(lambda: compare(TENANT, pair, started_at))
    assert clean.drift.total == 0, clean.drift
    deleted, stale = drift(seed_names := [f"SKU-{n:07d}" for n in range(args.skus)])
    del seed_names
    bucketed, bucketed_s, bucketed_mb = measured(lambda: compare(TENANT, pair, started_at))
    full, naive_s, naive_mb = measured(naive)
    assert (bucketed.drift.missing, bucketed.drift.stale) == (deleted, stale), bucketed.drift
    assert (full.missing, full.stale, full.extra) == (deleted, stale, []), full
    print(f"records: {bucketed.records}, drifted: {len(deleted) + len(stale)} (0.1%), "
          f"buckets differing: {len(bucketed.buckets_differing)}")  # fmt: skip
    print(f"bucketed, zero drift: {clean_s:.2f} s, peak heap {clean_mb:.1f} MB")
    print(f"bucketed, 0.1% drift: {bucketed_s:.2f} s, peak heap {bucketed_mb:.1f} MB")
    print(f"naive full compare:  {naive_s:.2f} s, peak heap {naive_mb:.1f} MB")
    print(f"ratio naive/bucketed: {naive_s / bucketed_s:.2f}")
    PAIRS["inventory-redis"].repair(TENANT, bucketed.drift)


if __name__ == "__main__":
    main()
