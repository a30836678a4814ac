from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_backend() -> Iterator[None]:
    """One throw-away Prefect API (SQLite) for all flow tests of the session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
