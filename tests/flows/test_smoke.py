from __future__ import annotations

from flows.smoke import smoke


def test_smoke_round_trips_every_store(tenant: str) -> None:
    assert smoke(tenant=tenant) == [
        f"{store}: ok"
        for store in ("postgres", "mongodb", "redis", "cassandra", "elasticsearch", "neo4j")
    ]
