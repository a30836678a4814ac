from __future__ import annotations

from stores import redis


def test_product_cache_round_trip_with_ttl(tenant: str) -> None:
    redis.cache_products(tenant, {"SKU-1": {"name": "Kettle", "price": "19.99"}}, ttl=120)

    assert redis.cached_products(tenant, ["SKU-1", "SKU-2"]) == {
        "SKU-1": {"name": "Kettle", "price": "19.99"}
    }
    assert 0 < redis.client().ttl(redis.key(tenant, "product", "SKU-1")) <= 120


def test_keys_carry_the_tenant(tenant: str) -> None:
    redis.cache_products(tenant, {"SKU-1": {"name": "A"}})
    redis.cache_products(f"{tenant}-b", {"SKU-1": {"name": "B"}})

    assert redis.key(tenant, "product", "SKU-1") == f"pf:{tenant}:product:SKU-1"
    assert redis.cached_products(tenant, ["SKU-1"])["SKU-1"]["name"] == "A"
    assert redis.cached_products(f"{tenant}-b", ["SKU-1"])["SKU-1"]["name"] == "B"
