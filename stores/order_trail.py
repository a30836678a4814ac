"""Where one order lives: what PostgreSQL and each derived store hold of it, for operators."""

from __future__ import annotations

from stores import cassandra, neo4j, postgres, redis


def order_trail(tenant: str, order_id: str) -> dict[str, str]:
    """One line per store describing the order there, or saying it has not arrived."""
    order = postgres.find_order(tenant, order_id)
    if order is None:
        return {"postgres": "no such order"}
    cached = redis.get_versioned(tenant, "order", order_id)
    events = [
        event.event_type
        for event in cassandra.events_on(tenant, order.placed_at.date())
        if event.aggregate_id == order_id
    ]
    edges = neo4j.purchases(tenant, order_id)
    lines = ", ".join(f"{line.sku} x{line.quantity}" for line in order.lines)
    return {
        "postgres": f"{order.status}, {order.total} {order.currency}: {lines}",
        "redis": f"{cached['status']} (version {cached['version']})" if cached else "not yet",
        "cassandra": ", ".join(events) or "not yet",
        "neo4j": ", ".join(
            f"{edge['customer_id']} PURCHASED {sku} x{edge['quantity']} ({edge['status']})"
            for sku, edge in sorted(edges.items())
        )
        or "not yet",
    }
