"""`polyflow check`, run as the real command."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stores import mongodb
from tests.helpers import catalog_product, run_cli


@pytest.fixture(autouse=True)
def clean(tenant: str) -> Iterator[None]:
    yield
    mongodb.database()[mongodb.PRODUCTS].delete_many({"tenant": tenant})


def test_check_prints_the_pairs_and_exits_non_zero_on_drift(tenant: str) -> None:
    clean = run_cli("check", "--tenant", tenant, timeout=180)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "consistent" in clean.stdout
    assert "orders-redis" in clean.stdout and "catalog-neo4j" in clean.stdout

    # a product only MongoDB has: the search index and the graph lack it (a cache miss is fine)
    mongodb.upsert_products(tenant, [catalog_product("KET-001", "39.90")])
    drifted = run_cli("check", "--tenant", tenant, timeout=180)
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "consistency gate failed" in drifted.stdout
    lines = {
        line.split("│")[2].strip(): line
        for line in drifted.stdout.splitlines()
        if "│" in line and tenant in line
    }
    assert "drift" in lines["catalog-neo4j"] and "KET-001" in lines["catalog-neo4j"]
    assert "drift" in lines["catalog-elasticsearch"]
    assert "drift" not in lines["catalog-redis"]


def test_check_refuses_an_invalid_tenant() -> None:
    result = run_cli("check", "--tenant", "Not A Tenant")
    assert result.returncode == 2
    assert "invalid tenant id" in result.stdout
