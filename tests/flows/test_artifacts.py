"""Artifact keys: one per (kind, tenant), never shared by two tenants, always a valid key."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from domain.tenancy import TENANT_PATTERN
from flows.artifacts import artifact_key

tenants = st.from_regex(TENANT_PATTERN, fullmatch=True)


@given(tenants, tenants)
def test_two_tenants_never_share_an_artifact_key(one: str, other: str) -> None:
    assert re.fullmatch(r"[a-z0-9-]+", artifact_key("catalog-import", one))
    if one != other:
        assert artifact_key("catalog-import", one) != artifact_key("catalog-import", other)


def test_underscore_and_dash_tenants_get_their_own_keys() -> None:
    assert artifact_key("catalog-import", "a_b") != artifact_key("catalog-import", "a-b")
