"""Every store's client, built once per process in one place, and closed in one place.

A store module asks `shared(STORE, connect, disconnect)` for its client. The registry keys the
client by the store, the store's URL and the connect timeout as the settings give them *now*:

- the first call builds it (`connect(settings)`), later calls get the same one; threads asking
  at once still get one client (the build runs under a per-key lock, so a slow store, such as a
  Cassandra node that is down, holds up only callers of that same store);
- a build that raises is not kept, so the next call tries again (a health check of a store
  that came back up succeeds without anyone clearing a cache);
- under `domain.settings.override` (or `pointed_at`, which also closes what the block built)
  the key differs, so the block gets a client for its URL, and the code after the block gets
  the original client back, never closed;
- after a fork the child starts empty: a driver's sockets and threads do not survive a fork,
  and closing the parent's clients from the child would cut the parent's connections.

`close(store)` closes one store's clients, `close()` all of them (`stores.registry.close_all`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from domain.settings import Settings, override, settings

T = TypeVar("T")


@dataclass(frozen=True)
class Key:
    store: str
    url: str
    connect_timeout: float
    call_timeout: float

    def __repr__(self) -> str:  # the URL holds credentials
        return f"Key(store={self.store!r})"


@dataclass
class _Entry:
    client: Any
    disconnect: Callable[[Any], None]


_lock = threading.Lock()
_key_locks: dict[Key, threading.Lock] = {}
_clients: dict[Key, _Entry] = {}
_pid = os.getpid()


def key(store: str, config: Settings | None = None) -> Key:
    config = config or settings()
    return Key(store, config.store_url(store).reveal(), config.connect_timeout, config.call_timeout)


def _forget_parent_clients() -> None:
    """Called with `_lock` held."""
    global _pid
    if os.getpid() != _pid:
        _pid = os.getpid()
        _clients.clear()
        _key_locks.clear()


def shared(store: str, connect: Callable[[Settings], T], disconnect: Callable[[T], None]) -> T:
    """The process's client of `store` for the current settings, built by `connect` if new."""
    config = settings()
    wanted = key(store, config)
    with _lock:
        _forget_parent_clients()
        entry = _clients.get(wanted)
        if entry is not None:
            return cast(T, entry.client)
        build_lock = _key_locks.setdefault(wanted, threading.Lock())
    with build_lock:
        with _lock:
            entry = _clients.get(wanted)
        if entry is None:
            entry = _Entry(connect(config), cast(Callable[[Any], None], disconnect))
            with _lock:
                _clients[wanted] = entry
        return cast(T, entry.client)


def _close(keys: list[Key]) -> None:
    with _lock:
        _forget_parent_clients()
        entries = [_clients.pop(k) for k in keys if k in _clients]
    for entry in entries:
        entry.disconnect(entry.client)


def close(store: str | None = None) -> None:
    """Close the clients of one store (every URL it was used with), or of every store."""
    with _lock:
        keys = [k for k in _clients if store is None or k.store == store]
    _close(keys)


def open_stores() -> list[str]:
    """The stores with a client open now (one name per client), for tests and diagnostics."""
    with _lock:
        return [k.store for k in _clients]


@contextmanager
def pointed_at(**fields: Any) -> Iterator[Settings]:
    """Point the process at other settings for one block, e.g. `pointed_at(redis_url=...)`.

    Inside, every store whose URL (or the timeout) changed gets a client for the new value;
    afterwards the original settings and clients are back, and the clients the block built
    for values no longer in force are closed.
    """
    with _lock:
        before = set(_clients)
    try:
        with override(**fields) as config:
            yield config
    finally:
        restored = settings()
        with _lock:
            stale = [k for k in _clients if k not in before and k != key(k.store, restored)]
        _close(stale)
