"""Shared fixtures. Store tests run against the real servers of the local stack (`make stack`).

Nothing here starts a server: `make test` brings the stack up once, before pytest. When a store
is not reachable, every test that needs it fails with a message naming the store; none is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from flows.runtime import in_process
from stores.health import StoreHealth
from stores.registry import check_health


@pytest.fixture(scope="session", autouse=True)
def direct_flow_calls() -> Iterator[None]:
    """Tests call flows in-process, as the CLI does (see `flows.runtime`)."""
    with in_process():
        yield


@pytest.fixture(scope="session")
def store_health() -> dict[str, StoreHealth]:
    return {report.store: report for report in check_health()}


@pytest.fixture(scope="session")
def stores(store_health: dict[str, StoreHealth]) -> None:
    """Fail (never skip) with the names of unreachable stores and how to start them."""
    down = [r for r in store_health.values() if not r.healthy]
    if down:
        lines = "\n".join(f"  - {r.store} at {r.address}: {r.error}" for r in down)
        pytest.fail(
            f"store(s) not reachable:\n{lines}\nstart the local stack with 'make stack' "
            "(or 'polyflow stack up') and see 'polyflow stack status'",
            pytrace=False,
        )


@pytest.fixture
def tenant(stores: None) -> str:
    """A fresh tenant id per test, so tests never see each other's data."""
    return f"t-{uuid.uuid4().hex[:12]}"
