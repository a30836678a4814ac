from __future__ import annotations

from flows.smoke import smoke


def test_smoke_round_trips_every_store_and_can_run_again(tenant: str) -> None:
    expected = [
        f"{store}: ok"
        for store in ("postgres", "mongodb", "redis", "cassandra", "elasticsearch", "neo4j")
    ]

    assert smoke(tenant=tenant) == expected
    assert smoke(tenant=tenant) == expected
