"""Every per-tenant name in every store is unambiguous: no tenant's name, with whatever the code
appends to it, is another tenant's. A property test over tenant ids; no store needed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.tenancy import TENANT_PATTERN
from stores import elasticsearch, redis

tenants = st.from_regex(TENANT_PATTERN, fullmatch=True)


def search_names(tenant: str) -> set[str]:
    return {
        elasticsearch.read_alias(tenant),
        elasticsearch.write_alias(tenant),
        elasticsearch.new_index_name(tenant),
    }


@given(tenants, tenants)
def test_search_names_of_two_tenants_never_meet(one: str, other: str) -> None:
    if one == other:
        return
    assert not search_names(one) & search_names(other)
    pattern = elasticsearch._version_pattern(one)
    assert not any(pattern.fullmatch(name) for name in search_names(other))


@given(tenants, tenants)
def test_redis_keys_of_one_tenant_are_never_under_anothers_prefix(one: str, other: str) -> None:
    if one == other:
        return
    prefix = redis.key(one, "")
    assert not redis.key(other, "product", "SKU-1").startswith(prefix)
    assert not redis.key(other, "").startswith(prefix)


def test_a_suffix_that_once_collided_no_longer_does() -> None:
    assert elasticsearch.read_alias("acme-write") != elasticsearch.write_alias("acme")
    assert not elasticsearch._version_pattern("acme").fullmatch(
        elasticsearch.read_alias("acme-20261203120000000000")
    )
