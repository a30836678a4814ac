"""`polyflow inventory | order | outbox` as an operator runs them, against the real stores."""

from __future__ import annotations

from domain.orders import order_id_for
from stores import mongodb, postgres, redis
from tests.helpers import catalog_product, run_cli


def test_an_order_placed_from_the_cli_shows_where_it_lives(tenant: str) -> None:
    mongodb.upsert_products(tenant, [catalog_product("MUG-1", "9.50")])
    stocked = run_cli("inventory", "set", "--tenant", tenant, "MUG-1=3")
    assert stocked.returncode == 0, stocked.stderr

    placed = run_cli("order", "place", "--tenant", tenant, "MUG-1=2", "--key", "k1", timeout=120)

    assert placed.returncode == 0, placed.stderr
    assert order_id_for(tenant, "k1") in placed.stdout
    for holding in ("placed, 19.00 EUR: MUG-1 x2", "order_placed", "PURCHASED MUG-1 x2"):
        assert holding in placed.stdout
    assert postgres.get_inventory(tenant, ["MUG-1"]) == {"MUG-1": 1}


def test_a_refused_order_exits_1_with_the_reason_and_changes_no_stock(tenant: str) -> None:
    mongodb.upsert_products(tenant, [catalog_product("MUG-1", "9.50")])
    run_cli("inventory", "set", "--tenant", tenant, "MUG-1=1")

    refused = run_cli("order", "place", "--tenant", tenant, "MUG-1=5", timeout=120)

    assert refused.returncode == 1
    assert "insufficient stock for sku 'MUG-1': 1 available, 5 asked" in refused.stdout
    assert postgres.get_inventory(tenant, ["MUG-1"]) == {"MUG-1": 1}


def test_malformed_items_and_negative_stock_are_usage_errors(tenant: str) -> None:
    malformed = run_cli("order", "place", "--tenant", tenant, "MUG-1:2")
    negative = run_cli("inventory", "set", "--tenant", tenant, "MUG-1=-4")

    assert malformed.returncode == 2 and "'MUG-1:2' is not SKU=QUANTITY" in malformed.stderr
    assert negative.returncode == 2 and "stock levels cannot be negative" in negative.stderr


def test_a_sku_given_twice_is_refused_by_the_same_rule_as_the_api(tenant: str) -> None:
    mongodb.upsert_products(tenant, [catalog_product("MUG-1", "9.50")])
    run_cli("inventory", "set", "--tenant", tenant, "MUG-1=9")

    doubled = run_cli("order", "place", "--tenant", tenant, "MUG-1=1", "MUG-1=2")

    assert doubled.returncode == 2
    assert "sku given more than once: MUG-1" in doubled.stderr
    assert postgres.get_inventory(tenant, ["MUG-1"]) == {"MUG-1": 9}


def test_inventory_set_reaches_redis_before_it_returns(tenant: str) -> None:
    stocked = run_cli("inventory", "set", "--tenant", tenant, "MUG-1=4", timeout=120)

    assert stocked.returncode == 0, stocked.stderr
    assert redis.get_versioned(tenant, "stock", "MUG-1")["on_hand"] == "4"
