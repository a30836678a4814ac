"""What a store's health check reports, the same shape for all six."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StoreHealth:
    store: str
    address: str
    healthy: bool
    version: str = ""
    size: str = ""
    latency_ms: float = 0.0
    error: str = ""


def measure(store: str, address: str, check: Callable[[], tuple[str, str]]) -> StoreHealth:
    """Run `check` (returning version and a size figure) and turn any failure into a report.

    A health check must never raise: the point is to report the other stores even when one is down.
    """
    started = time.perf_counter()
    try:
        version, size = check()
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StoreHealth(
            store=store,
            address=address,
            healthy=False,
            latency_ms=(time.perf_counter() - started) * 1000,
            error=f"{type(exc).__name__}: {message[:200]}",
        )
    return StoreHealth(
        store=store,
        address=address,
        healthy=True,
        version=version,
        size=size,
        latency_ms=(time.perf_counter() - started) * 1000,
    )
