"""`postgres.order_lines`: the one read the recommendation rebuild makes of orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stores import postgres
from tests.recommendation_seed import cancel, place_orders


def test_lines_of_placed_orders_in_the_window_only(tenant: str) -> None:
    now = datetime.now(UTC)
    place_orders(tenant, [("o1", "ann", ("A", "B")), ("o2", "bo", ("C",))], now - timedelta(days=2))
    place_orders(tenant, [("old", "ann", ("D",))], now - timedelta(days=40))
    place_orders(tenant, [("gone", "ann", ("E",))], now - timedelta(days=1))
    cancel(tenant, "gone")
    place_orders(f"{tenant}-b", [("o1", "ann", ("Z",))], now - timedelta(days=1))

    assert postgres.order_lines(tenant, now - timedelta(days=30)) == [
        ("o1", "ann", "A"),
        ("o1", "ann", "B"),
        ("o2", "bo", "C"),
    ]
    assert ("old", "ann", "D") in postgres.order_lines(tenant, now - timedelta(days=60))
    assert postgres.order_lines(f"{tenant}-c", now - timedelta(days=60)) == []
