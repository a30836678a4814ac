"""A synthetic storefront: deterministic shopper sessions for demos, tests and benchmarks.

Same seed, same events. Each session is one shopper browsing: mostly product views, some
searches, some products added to the cart, sometimes a checkout. Shoppers and skus are the ones
the caller's orders use, so the traffic is consistent with the orders placed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from domain.analytics import ADDED_TO_CART, CHECKOUT_STARTED, PRODUCT_VIEWED, SEARCHED

QUERIES = ("kettle", "mug", "tea", "teapot", "gift", "green tea", "espresso", "cups")


def synthetic_events(
    tenant: str,
    start: datetime,
    end: datetime,
    count: int,
    seed: int = 1,
    skus: Sequence[str] = tuple(f"SKU-{i:04d}" for i in range(1, 101)),
    customers: Sequence[str] = tuple(f"c-{i:04d}" for i in range(1, 201)),
    until: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """`count` events of `tenant` between `start` and `end` (aware datetimes), as JSON-ready
    dicts in the event-file format, session by session. Events after `until` (say, now) are
    left out, so a day generated again later holds the same events plus the newer ones."""
    rng = random.Random(seed)  # noqa: S311 - synthetic traffic, not secrets
    span = max((end - start).total_seconds() - 600, 1)
    made = 0
    session = 0
    while made < count:
        session += 1
        user = rng.choice(customers)
        session_id = f"s-{seed}-{session}"
        moment = start + timedelta(seconds=rng.uniform(0, span))
        cart: list[str] = []
        for _ in range(min(rng.randint(3, 12), count - made)):
            roll = rng.random()
            sku = rng.choice(skus)
            if roll < 0.6:
                event_type, properties = PRODUCT_VIEWED, {"page": f"/p/{sku}"}
            elif roll < 0.8:
                event_type, properties, sku = SEARCHED, {"query": rng.choice(QUERIES)}, None
            elif roll < 0.93 or not cart:
                event_type, properties = ADDED_TO_CART, {"quantity": rng.randint(1, 3)}
                cart.append(sku)
            else:
                event_type, properties, sku = CHECKOUT_STARTED, {"items": len(cart)}, None
            made += 1
            if until is not None and moment > until:
                moment += timedelta(seconds=rng.uniform(5, 50))
                continue
            yield {
                "event_id": f"ev-{seed}-{made}",
                "tenant": tenant,
                "occurred_at": moment.isoformat(),
                "event_type": event_type,
                "user_id": user,
                "session_id": session_id,
                "sku": sku,
                "properties": properties,
            }
            moment += timedelta(seconds=rng.uniform(5, 50))
            if moment >= end:
                break
