"""Orders: the requests a client sends, and every rule that decides what an order is.

Plain Python and pydantic, no store and no Prefect. What a request can get wrong on its own
(shape, sizes, formats, a sku on two lines) is refused by the models before anything runs.
What needs the catalog (unknown sku, currency, a price the currency cannot hold, a total over
the limit) is refused by `price_order`, again before any store is written. The stores then
persist what these functions decided: the priced lines, the total, the stock to reserve, the
transition and the outbox events.

Rules, once:
- a sku appears on at most one line of a request; a repeated sku is refused with a reason,
  never merged or overwritten silently (the CLI and the API share this model, so they agree);
- every amount is exact to the order currency's minor unit (`domain.money`); a line total is
  unit price x quantity, the order total the sum of the line totals, the payment that total;
- a line has 1 to `MAX_QUANTITY` units, an order at most `MAX_LINES` lines and a total of at
  most `MAX_AMOUNT` of its currency;
- stock is reserved in sku order, which keeps concurrent orders from deadlocking;
- the only transition is placed -> cancelled; cancelling a cancelled order is a replay;
- an idempotency key names one request: replaying it with another body is a conflict.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from hashlib import sha256
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from domain.catalog import canonical_json
from domain.codes import SKU_PATTERN
from domain.money import CURRENCIES, MAX_AMOUNT, MoneyError, amount
from domain.tenancy import TenantId

MAX_QUANTITY = 1000
MAX_LINES = 100
PLACED = "placed"
CANCELLED = "cancelled"
OrderStatus = Literal["placed", "cancelled"]
TRANSITIONS: frozenset[tuple[str, str]] = frozenset({(PLACED, CANCELLED)})
"""The allowed (from, to) status changes of an order."""
ORDER_NAMESPACE = uuid.UUID("5b0e7c1e-9a43-4d4e-8f51-2f1f3f0c6a10")

_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def storable_text(text: str) -> str:
    """Refuse what is text to Python but not to every store: control characters (a NUL byte
    PostgreSQL cannot hold) and lone surrogates (from a JSON escape; not UTF-8)."""
    found = _UNSTORABLE.search(text)
    if found:
        raise ValueError(f"contains the unstorable character {found.group()!r} at {found.start()}")
    return text


Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
CustomerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$", max_length=320)]
Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    AfterValidator(storable_text),
]


class OrderRejected(ValueError):
    """The order cannot be placed as asked; nothing was written anywhere."""


class OrderConflict(OrderRejected):
    """The idempotency key already placed an order for a different request."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(Strict):
    """Who orders; upserted by (tenant, customer_id) with each order."""

    customer_id: CustomerId
    email: Email
    name: Text


class OrderLine(Strict):
    sku: Sku
    quantity: int = Field(gt=0, le=MAX_QUANTITY, description=f"units, 1 to {MAX_QUANTITY}")


class OrderRequest(Strict):
    """A client's order. The idempotency key makes a retried request return the first order."""

    tenant: TenantId
    customer: Customer
    lines: list[OrderLine] = Field(
        min_length=1, max_length=MAX_LINES, description="one line per sku"
    )
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
        repeated = repeated_skus([line.sku for line in lines])
        if repeated:
            raise ValueError(
                f"sku listed on more than one line: {', '.join(repeated)}; "
                "put each sku on one line with its total quantity"
            )
        return lines

    def fingerprint(self) -> str:
        """sha256 of the request body: what a replay of the idempotency key must match."""
        return sha256(canonical_json(self.model_dump(mode="json")).encode()).hexdigest()


def repeated_skus(skus: list[str]) -> list[str]:
    """The skus that appear more than once, sorted: the one rule for duplicate lines."""
    return sorted({sku for sku in skus if skus.count(sku) > 1})


class PricedLine(Strict):
    sku: Sku
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


class PlacedOrder(Strict):
    """An order as PostgreSQL holds it. `replayed` is true when the idempotency key had already
    placed it: the stored order is returned and nothing changed."""

    tenant: str
    order_id: str
    customer_id: str
    status: OrderStatus
    currency: str
    total: Decimal
    lines: list[PricedLine]
    placed_at: datetime
    version: int = 1
    replayed: bool = False


class UserProfile(Strict):
    """A user's profile; reaches MongoDB, Redis and Neo4j through the outbox."""

    tenant: TenantId
    customer_id: CustomerId
    email: Email
    name: Text


@dataclass(frozen=True)
class CatalogPrice:
    """What the catalog says an order line costs: its price text and currency."""

    price: str
    currency: str


@dataclass(frozen=True)
class PricedOrder:
    """An accepted request, priced: everything the store needs to persist it."""

    request: OrderRequest
    order_id: str
    lines: tuple[PricedLine, ...]
    total: Decimal

    @property
    def reservations(self) -> list[tuple[str, int]]:
        """(sku, units) to take from stock, in sku order: the lock order of every order."""
        return [(line.sku, line.quantity) for line in self.lines]


def order_id_for(tenant: str, idempotency_key: str) -> str:
    """The order id is derived from the client's idempotency key: one key, one order id."""
    return uuid.uuid5(ORDER_NAMESPACE, f"{tenant}\x00{idempotency_key}").hex


def price_order(request: OrderRequest, catalog: Mapping[str, CatalogPrice]) -> PricedOrder:
    """Price every line from the catalog, or refuse the order saying why.

    Refused: skus the catalog does not have, lines whose catalog currency is not the order's,
    catalog prices with more decimals than the currency has, and totals over `MAX_AMOUNT`.
    """
    skus = [line.sku for line in request.lines]
    unknown = [sku for sku in skus if sku not in catalog]
    if unknown:
        raise OrderRejected(f"unknown sku(s) for tenant {request.tenant!r}: {', '.join(unknown)}")
    other = [
        f"{sku} is in {catalog[sku].currency}"
        for sku in skus
        if catalog[sku].currency != request.currency
    ]
    if other:
        raise OrderRejected(f"order currency is {request.currency} but {', '.join(other)}")
    lines = []
    for line in sorted(request.lines, key=lambda line: line.sku):
        try:
            unit_price = amount(catalog[line.sku].price, request.currency)
        except MoneyError as error:
            raise OrderRejected(f"catalog price of {line.sku} is not usable: {error}") from None
        lines.append(PricedLine(sku=line.sku, quantity=line.quantity, unit_price=unit_price))
    total = sum((line.line_total for line in lines), Decimal(0))
    if total > MAX_AMOUNT:
        raise OrderRejected(
            f"order total {total} {request.currency} exceeds the limit of {MAX_AMOUNT}"
        )
    return PricedOrder(
        request=request,
        order_id=order_id_for(request.tenant, request.idempotency_key),
        lines=tuple(lines),
        total=amount(total, request.currency),
    )


def check_replay(stored_fingerprint: str | None, request: OrderRequest, order_id: str) -> None:
    """A replayed idempotency key must carry the same request it placed the order with."""
    if stored_fingerprint is not None and stored_fingerprint != request.fingerprint():
        raise OrderConflict(
            f"idempotency key {request.idempotency_key!r} already placed order {order_id} "
            "with a different request; use a new key for a new order"
        )


def check_transition(order_id: str, current: str, target: str) -> bool:
    """True if `current -> target` is a change to make, False if it is a replay (already
    there); refuses (OrderRejected) a transition the order's life does not allow."""
    if current == target:
        return False
    if (current, target) not in TRANSITIONS:
        raise OrderRejected(f"order {order_id} is {current}; it cannot become {target}")
    return True
