"""Recommendation lists in the real Redis: generation keys, one pointer, old keys expiring."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stores import redis
from tests.recommendation_seed import forget

PRODUCTS = {"A": {"bought": [["B", 0.8]], "similar": [["D", 0.5]]}}
CUSTOMERS = {"ann": [["B", 0.8]]}


@pytest.fixture(autouse=True)
def clean(tenant: str) -> Iterator[None]:
    yield
    forget(tenant)
    forget(f"{tenant}-b")


def test_published_lists_are_invisible_until_the_pointer_switches(tenant: str) -> None:
    assert redis.publish_recommendations(tenant, "g1", PRODUCTS, CUSTOMERS) == 2
    assert redis.recommendation_lists(tenant, redis.PRODUCT_LISTS, "A") == (None, None)
    assert redis.switch_recommendations(tenant, "g1") is None
    assert redis.recommendation_lists(tenant, redis.PRODUCT_LISTS, "A") == ("g1", PRODUCTS["A"])
    assert redis.recommendation_lists(tenant, redis.CUSTOMER_LISTS, "ann") == ("g1", [["B", 0.8]])
    assert redis.recommendation_lists(tenant, redis.PRODUCT_LISTS, "Z") == ("g1", None)


def test_switching_expires_every_other_generation_of_the_tenant_only(tenant: str) -> None:
    other = f"{tenant}-b"
    redis.publish_recommendations(other, "g1", PRODUCTS, CUSTOMERS)
    redis.switch_recommendations(other, "g1")
    redis.publish_recommendations(tenant, "g1", PRODUCTS, CUSTOMERS)
    redis.switch_recommendations(tenant, "g1")
    redis.publish_recommendations(tenant, "g0-failed", PRODUCTS, CUSTOMERS)  # never switched
    redis.publish_recommendations(tenant, "g2", {"A": {"bought": [], "similar": []}}, {})

    assert redis.switch_recommendations(tenant, "g2", grace=60) == "g1"

    client = redis.client()
    assert 0 < client.ttl(redis.key(tenant, "rec", "g1", "product", "A")) <= 60
    assert 0 < client.ttl(redis.key(tenant, "rec", "g0-failed", "customer", "ann")) <= 60
    assert client.ttl(redis.key(tenant, "rec", "g2", "product", "A")) == -1
    assert client.ttl(redis.key(other, "rec", "g1", "product", "A")) == -1
    assert redis.recommendation_lists(tenant, redis.PRODUCT_LISTS, "A")[1] == {
        "bought": [],
        "similar": [],
    }
    assert redis.recommendation_generation(other) == "g1"
