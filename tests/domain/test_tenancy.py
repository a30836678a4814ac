from __future__ import annotations

import pytest

from domain.tenancy import InvalidTenant, check_tenant


@pytest.mark.parametrize("tenant", ["acme", "shop-42", "a", "x_y", "0" * 63])
def test_valid_tenant_ids(tenant: str) -> None:
    assert check_tenant(tenant) == tenant


@pytest.mark.parametrize(
    "tenant", ["", "Acme", "-acme", "acme:1", "a*", "a b", "a/b", "0" * 64, '{"$gt": ""}']
)
def test_tenant_ids_no_store_can_key_on_are_refused(tenant: str) -> None:
    with pytest.raises(InvalidTenant, match="invalid tenant id"):
        check_tenant(tenant)
