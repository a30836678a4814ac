"""The six stores as one list, for the things that go over all of them (bootstrap, health)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stores import cassandra, clients, elasticsearch, mongodb, neo4j, postgres, redis
from stores.health import StoreHealth


@dataclass(frozen=True)
class Store:
    name: str
    bootstrap: Callable[[], None]
    health: Callable[[], StoreHealth]
    close: Callable[[], None]


STORES: tuple[Store, ...] = tuple(
    Store(module.STORE, module.bootstrap, module.health, module.close)
    for module in (postgres, mongodb, redis, cassandra, elasticsearch, neo4j)
)


def check_health() -> list[StoreHealth]:
    """Every store's health, checked concurrently so one slow store does not delay the others."""
    with ThreadPoolExecutor(max_workers=len(STORES)) as pool:
        return list(pool.map(lambda store: store.health(), STORES))


def close_all() -> None:
    """Close every client the process opened, whichever store and URL (see `stores.clients`)."""
    clients.close()
