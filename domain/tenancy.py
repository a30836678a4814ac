"""Tenant ids: part of every key in every store, so they are checked once, here.

The id becomes part of Elasticsearch index names, Redis keys and Cassandra partition keys, so
it is restricted to characters every store accepts verbatim (lower-case, digits, '-' and '_').
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class InvalidTenant(ValueError):
    """A tenant id no store could key on safely."""


def check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidTenant(
            f"invalid tenant id {tenant!r}: use 1-63 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return tenant


TenantId = Annotated[str, AfterValidator(check_tenant)]
