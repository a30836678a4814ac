"""Order and customer requests: the pydantic models the Prefect UI renders as forms.

Everything a request can get wrong on its own (shape, sizes, formats) is caught here, before any
store is touched; what needs the stores (unknown sku, price currency, stock) is checked by the
place-order flow and raises `OrderRejected`, again before anything is written.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from polyflow.codes import CURRENCIES, SKU_PATTERN
from stores.tenancy import TenantId

MAX_QUANTITY = 1000
MAX_LINES = 100

Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
CustomerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$", max_length=320)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class OrderRejected(ValueError):
    """The order cannot be placed as asked; nothing was written anywhere."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(Strict):
    """Who orders; upserted by (tenant, customer_id) with each order."""

    customer_id: CustomerId
    email: Email
    name: Text


class OrderLine(Strict):
    sku: Sku
    quantity: int = Field(gt=0, le=MAX_QUANTITY, description="units, 1 to 1000")


class OrderRequest(Strict):
    """A client's order. The idempotency key makes a retried request return the first order."""

    tenant: TenantId
    customer: Customer
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    currency: str = Field(description="ISO 4217; must be the catalog's currency of every line")
    idempotency_key: Text
    payment_reference: Text

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, currency: str) -> str:
        if currency not in CURRENCIES:
            raise ValueError(f"currency {currency!r} is not an active ISO 4217 code")
        return currency

    @field_validator("lines")
    @classmethod
    def _one_line_per_sku(cls, lines: list[OrderLine]) -> list[OrderLine]:
        skus = [line.sku for line in lines]
        repeated = sorted({sku for sku in skus if skus.count(sku) > 1})
        if repeated:
            raise ValueError(f"sku listed on more than one line: {', '.join(repeated)}")
        return lines


class PricedLine(Strict):
    sku: Sku
    quantity: int
    unit_price: Decimal


class PlacedOrder(Strict):
    """An order as PostgreSQL holds it. `replayed` is true when the idempotency key had already
    placed it: the stored order is returned and nothing changed."""

    tenant: str
    order_id: str
    customer_id: str
    status: Literal["placed", "cancelled"]
    currency: str
    total: Decimal
    lines: list[PricedLine]
    placed_at: datetime
    replayed: bool = False


class UserProfile(Strict):
    """A user's profile; reaches MongoDB, Redis and Neo4j through the outbox."""

    tenant: TenantId
    customer_id: CustomerId
    email: Email
    name: Text
