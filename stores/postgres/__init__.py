"""PostgreSQL: the source of truth for tenants, users, orders, payments, inventory and the outbox.

One module per concern: `schema` (models, engine, transactions, bootstrap, health), `orders`
(orders, tenants, users), `inventory` (stock levels and moves), `outbox` (publish and claim),
`queries` (reads). Every write is keyed by natural ids that include the tenant. This package
exports what callers use, so they write `postgres.place_order(...)`.
"""

from stores.postgres import checksums
from stores.postgres.backfills import (
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    BackfillPartition,
    PartitionStatus,
    partition_statuses,
    record_partition,
)
from stores.postgres.inventory import get_inventory, set_inventory
from stores.postgres.orders import (
    Committed,
    cancel_order,
    ensure_tenant,
    place_order,
    upsert_tenants,
    upsert_user,
)
from stores.postgres.outbox import (
    Claim,
    DeadLetter,
    Routes,
    claim_pending,
    dead_letters,
    pending_deliveries,
    replay_dead_letters,
)
from stores.postgres.queries import (
    find_order,
    latest_orders,
    order_events_between,
    order_lines,
    order_times_since,
    order_truth,
)
from stores.postgres.schema import (
    STORE,
    Inventory,
    Order,
    OrderItem,
    OutboxDelivery,
    OutboxEvent,
    Payment,
    Tenant,
    User,
    bootstrap,
    close,
    engine,
    health,
    unit_of_work,
)

__all__ = [
    "COMPLETED",
    "FAILED",
    "PENDING",
    "RUNNING",
    "STORE",
    "BackfillPartition",
    "Claim",
    "Committed",
    "DeadLetter",
    "Inventory",
    "Order",
    "OrderItem",
    "OutboxDelivery",
    "OutboxEvent",
    "PartitionStatus",
    "Payment",
    "Routes",
    "Tenant",
    "User",
    "bootstrap",
    "cancel_order",
    "checksums",
    "claim_pending",
    "close",
    "dead_letters",
    "engine",
    "ensure_tenant",
    "find_order",
    "get_inventory",
    "health",
    "latest_orders",
    "order_events_between",
    "order_lines",
    "order_times_since",
    "order_truth",
    "partition_statuses",
    "pending_deliveries",
    "place_order",
    "record_partition",
    "replay_dead_letters",
    "set_inventory",
    "unit_of_work",
    "upsert_tenants",
    "upsert_user",
]
