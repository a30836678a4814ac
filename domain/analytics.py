"""Analytics: storefront events, what an hour of them and of orders adds up to, and partitions.

Pure rules, no I/O. A storefront event is something a shopper did (viewed a product, searched,
added to the cart, started a checkout); order events come from the outbox. An hour's rollup is
recomputed from the raw events of that hour, so running it twice gives the same metrics; a day's
rollup is derived from its hours. Amounts are exact decimals per currency (`domain.money`).

Metrics of an hour (and of a day):

| metric | meaning |
|---|---|
| `orders_placed`, `orders_cancelled` | distinct orders placed / cancelled in the hour |
| `revenue:<CUR>` | sum of the totals of the orders placed in the hour, per currency, exact |
| `units:<SKU>` | units of the sku in the orders placed in the hour |
| `customers` | distinct shoppers (user ids) with a storefront event in the hour |
| `views`, `searches`, `carts`, `checkouts` | storefront events of each type |
| `view_to_cart`, `cart_to_checkout`, `checkout_to_order` | conversion ratios (4 decimals), only
  when the denominator is not zero |
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal

from domain.money import quantum

PRODUCT_VIEWED = "product_viewed"
SEARCHED = "searched"
ADDED_TO_CART = "added_to_cart"
CHECKOUT_STARTED = "checkout_started"
STOREFRONT_TYPES = (PRODUCT_VIEWED, SEARCHED, ADDED_TO_CART, CHECKOUT_STARTED)
SKU_TYPES = frozenset({PRODUCT_VIEWED, ADDED_TO_CART})
"""Event types that are about one product and must name its sku."""

RETENTION = timedelta(days=400)
"""Events older than this are refused: they would land in partitions nobody reads any more."""
FUTURE_TOLERANCE = timedelta(minutes=5)
"""Clock skew allowed between a web tier and us before an event counts as from the future."""
COUNTER_TTL = timedelta(hours=48)
"""Live counters per (tenant, type, hour) live this long after their hour ends."""
SESSION_TTL = timedelta(minutes=30)
"""A session expires this long after its last event."""
MAX_ID_LENGTH = 128
MAX_PROPERTIES_BYTES = 4096
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"

METRIC_NAMES = {
    PRODUCT_VIEWED: "views",
    SEARCHED: "searches",
    ADDED_TO_CART: "carts",
    CHECKOUT_STARTED: "checkouts",
}
ORDERS_PLACED = "orders_placed"
ORDERS_CANCELLED = "orders_cancelled"
CUSTOMERS = "customers"
REVENUE = "revenue:"
UNITS = "units:"
RATIOS = {
    "view_to_cart": ("carts", "views"),
    "cart_to_checkout": ("checkouts", "carts"),
    "checkout_to_order": (ORDERS_PLACED, "checkouts"),
}
RATIO_QUANTUM = Decimal("0.0001")
ORDER_PLACED = "order_placed"
ORDER_CANCELLED = "order_cancelled"

PartitionSize = Literal["hour", "day"]


@dataclass(frozen=True, slots=True)
class StorefrontEvent:
    """One thing a shopper did, as validated from an event file."""

    event_id: str
    tenant: str
    occurred_at: datetime
    event_type: str
    user_id: str
    session_id: str
    sku: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hour(self) -> datetime:
        return hour_of(self.occurred_at)

    @property
    def quantity(self) -> int:
        """Units added to the cart (1 unless the event says otherwise)."""
        value = self.properties.get("quantity", 1)
        return value if isinstance(value, int) and value > 0 else 1


@dataclass(frozen=True, slots=True)
class OrderFact:
    """An order event as Cassandra keeps it: placed or cancelled, with its total and lines."""

    event_type: str
    order_id: str
    occurred_at: datetime
    currency: str | None
    amount: Decimal | None
    lines: tuple[tuple[str, int], ...] = ()


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in; naive datetimes are taken as UTC (Cassandra's)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def hours_of(start: datetime, end: datetime) -> list[datetime]:
    """The hours from `start`'s up to (excluding) `end`."""
    hours, hour = [], hour_of(start)
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def lines_of(payload: str | None) -> tuple[tuple[str, int], ...]:
    """(sku, quantity) of an order event's lines, as the outbox projection stored them."""
    if not payload:
        return ()
    data = json.loads(payload)
    lines = data.get("lines", []) if isinstance(data, dict) else data
    return tuple((str(line["sku"]), int(line["quantity"])) for line in lines)


def problems(event: Mapping[str, Any], now: datetime) -> dict[str, str]:
    """Why a parsed event cannot be stored, by field (rules GX cannot express on a frame:
    timezones and the properties' size); an empty dict when it can."""
    found: dict[str, str] = {}
    moment = event.get("occurred_at")
    if isinstance(moment, datetime) and moment.tzinfo is None:
        found["occurred_at"] = "occurred_at has no timezone"
    properties = event.get("properties")
    if properties is not None and not isinstance(properties, dict):
        found["properties"] = "properties must be a JSON object"
    elif properties and len(json.dumps(properties, default=str)) > MAX_PROPERTIES_BYTES:
        found["properties"] = f"properties are larger than {MAX_PROPERTIES_BYTES} bytes of JSON"
    return found


# -- rollups -------------------------------------------------------------------------------


@dataclass
class Rollup:
    """The metrics of one hour (or day): value and the number of raw events behind it."""

    values: dict[str, Decimal] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)

    def add(self, metric: str, value: Decimal | int, events: int = 1) -> None:
        self.values[metric] = self.values.get(metric, Decimal(0)) + Decimal(value)
        self.events[metric] = self.events.get(metric, 0) + events

    def rows(self) -> dict[str, tuple[Decimal, int]]:
        """metric -> (value, events), with customers and the ratios filled in."""
        values = dict(self.values)
        events = dict(self.events)
        if self.customers:
            values[CUSTOMERS] = Decimal(len(self.customers))
            events[CUSTOMERS] = len(self.customers)
        for ratio, (numerator, denominator) in RATIOS.items():
            if values.get(denominator):
                share = values.get(numerator, Decimal(0)) / values[denominator]
                values[ratio] = share.quantize(RATIO_QUANTUM)
                events[ratio] = events.get(numerator, 0) + events[denominator]
        return {metric: (values[metric], events[metric]) for metric in sorted(values)}


def hourly_rollups(
    orders: Iterable[OrderFact], storefront: Iterable[StorefrontEvent]
) -> dict[datetime, Rollup]:
    """Each hour's rollup from its raw events. An order counts once per event type, whatever
    number of copies of its event the store holds (replays write the same order again)."""
    rollups: dict[datetime, Rollup] = defaultdict(Rollup)
    seen: set[tuple[str, str]] = set()
    for fact in orders:
        if (fact.event_type, fact.order_id) in seen:
            continue
        seen.add((fact.event_type, fact.order_id))
        rollup = rollups[hour_of(fact.occurred_at)]
        if fact.event_type == ORDER_PLACED:
            rollup.add(ORDERS_PLACED, 1)
            if fact.currency and fact.amount is not None:
                rollup.add(REVENUE + fact.currency, fact.amount.quantize(quantum(fact.currency)))
            for sku, quantity in fact.lines:
                rollup.add(UNITS + sku, quantity)
        elif fact.event_type == ORDER_CANCELLED:
            rollup.add(ORDERS_CANCELLED, 1)
    for event in storefront:
        rollup = rollups[event.hour]
        rollup.add(METRIC_NAMES[event.event_type], 1)
        rollup.customers.add(event.user_id)
    return dict(rollups)


ADDITIVE_PREFIXES = (REVENUE, UNITS)
ADDITIVE = frozenset({ORDERS_PLACED, ORDERS_CANCELLED, *METRIC_NAMES.values()})


def is_additive(metric: str) -> bool:
    return metric in ADDITIVE or metric.startswith(ADDITIVE_PREFIXES)


def daily_rollup(
    hours: Iterable[Mapping[str, tuple[Decimal, int]]], customers: Iterable[str]
) -> Rollup:
    """A day from its hours' stored rows: additive metrics summed, distinct customers from the
    union of the hours' customers, ratios recomputed from the sums (never averaged)."""
    day = Rollup(customers=set(customers))
    for rows in hours:
        for metric, (value, events) in rows.items():
            if is_additive(metric):
                day.add(metric, value, events)
    return day


@dataclass(frozen=True)
class Mismatch:
    hour: datetime
    metric: str
    cassandra: str
    postgres: str


def reconciliation_rows(
    hour: datetime, rollup: Rollup | None, truth: Mapping[str, Decimal]
) -> list[dict[str, Any]]:
    """(hour, metric, cassandra, postgres) for the order metrics the gate compares: counts and
    revenue per currency; either side may lack a metric, which then counts as zero."""
    ours = rollup.values if rollup else {}
    metrics = {ORDERS_PLACED, ORDERS_CANCELLED}
    metrics |= {m for m in (*ours, *truth) if m.startswith(REVENUE)}
    return [
        {
            "hour": hour.isoformat(),
            "metric": metric,
            "cassandra": _spelt(metric, ours.get(metric, Decimal(0))),
            "postgres": _spelt(metric, truth.get(metric, Decimal(0))),
        }
        for metric in sorted(metrics)
    ]


def _spelt(metric: str, value: Decimal) -> str:
    if metric.startswith(REVENUE):
        return str(Decimal(value).quantize(quantum(metric[len(REVENUE) :])))
    return str(int(value))


# -- partitions ----------------------------------------------------------------------------


class PartitionError(ValueError):
    """A range or partition size a backfill cannot run."""


@dataclass(frozen=True, order=True)
class Partition:
    start: datetime
    end: datetime
    size: str

    @property
    def key(self) -> str:
        """`2026-12-01` for a day, `2026-12-01T13` for an hour."""
        spelt = self.start.strftime("%Y-%m-%dT%H" if self.size == "hour" else "%Y-%m-%d")
        return spelt

    @classmethod
    def parse(cls, key: str) -> Partition:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}", key):
            start = datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)
            return cls(start, start + timedelta(hours=1), "hour")
        start = datetime.strptime(key, "%Y-%m-%d").replace(tzinfo=UTC)
        return cls(start, start + timedelta(days=1), "day")


MAX_PARTITIONS = 24 * 400


def partitions(start: date, end: date, size: str, today: date) -> list[Partition]:
    """The partitions of the days `start`..`end` (both included), refusing what cannot run."""
    if size not in ("hour", "day"):
        raise PartitionError(f"unknown partition size {size!r}: use 'hour' or 'day'")
    if end < start:
        raise PartitionError(f"the range is reversed: {start} is after {end}")
    if start > today or end > today:
        raise PartitionError(f"the range {start}..{end} reaches into the future (today: {today})")
    step = timedelta(hours=1) if size == "hour" else timedelta(days=1)
    moment, stop = day_start(start), day_start(end + timedelta(days=1))
    found: list[Partition] = []
    while moment < stop:
        found.append(Partition(moment, moment + step, size))
        moment += step
        if len(found) > MAX_PARTITIONS:
            raise PartitionError(f"more than {MAX_PARTITIONS} partitions: split the range")
    if not found:
        raise PartitionError(f"the range {start}..{end} is empty")
    return found


BACKFILL_FLOWS: dict[str, tuple[str, ...]] = {
    "rollup-analytics": ("hour", "day"),
    "replay-analytics": ("day",),
}
"""Flows a backfill can replay, and the partition sizes each supports (a replay re-derives
whole days of order events)."""
REPROCESS = ("missing", "failed", "all")


class BackfillError(ValueError):
    """A backfill request that cannot run."""


def check_backfill(
    flow_name: str, start: date, end: date, size: str, reprocess: str, today: date
) -> list[Partition]:
    """The partitions of a valid backfill request; BackfillError naming what is wrong."""
    if flow_name not in BACKFILL_FLOWS:
        known = ", ".join(BACKFILL_FLOWS)
        raise BackfillError(f"unknown flow {flow_name!r}: a backfill runs {known}")
    if size not in BACKFILL_FLOWS[flow_name]:
        raise BackfillError(
            f"{flow_name} does not support {size!r} partitions "
            f"(it supports {', '.join(BACKFILL_FLOWS[flow_name])})"
        )
    if reprocess not in REPROCESS:
        raise BackfillError(f"unknown reprocess {reprocess!r}: missing, failed or all")
    try:
        return partitions(start, end, size, today)
    except PartitionError as error:
        raise BackfillError(str(error)) from None
