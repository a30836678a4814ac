"""Bootstrap is idempotent: a second run leaves every store's schema exactly as it was."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from stores import cassandra, elasticsearch, mongodb, neo4j, postgres
from stores.registry import STORES


def schema_snapshot() -> dict[str, Any]:
    with postgres.engine().connect() as conn:
        pg = conn.execute(
            text(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY 1, 2"
            )
        ).all()
        pg_constraints = conn.execute(
            text(
                "SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                "ORDER BY 1"
            )
        ).all()
    mongo = {
        name: sorted(mongodb.database()[name].index_information())
        for name in (mongodb.PRODUCTS, mongodb.IMPORT_REJECTS)
    }
    cql = sorted(
        (row.table_name, row.column_name, row.type)
        for row in cassandra.session().execute(
            "SELECT table_name, column_name, type FROM system_schema.columns "
            "WHERE keyspace_name = %s",
            (cassandra.connection_config().keyspace,),
        )
    )
    template = elasticsearch.client().indices.get_index_template(name=elasticsearch.TEMPLATE)
    constraints, _, _ = neo4j.driver().execute_query(
        "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties RETURN * ORDER BY name"
    )
    return {
        "postgres": (pg, pg_constraints),
        "mongodb": mongo,
        "cassandra": cql,
        "elasticsearch": template["index_templates"][0]["index_template"],
        "neo4j": [record.data() for record in constraints],
    }


def test_bootstrap_twice_changes_nothing(stores: None) -> None:
    for store in STORES:
        store.bootstrap()
    before = schema_snapshot()
    for store in STORES:
        store.bootstrap()

    after = schema_snapshot()
    assert after == before
    assert {table for table, _, _ in after["postgres"][0]} >= {
        "tenants",
        "users",
        "inventory",
        "orders",
        "order_items",
        "payments",
        "outbox",
        "outbox_deliveries",
    }
    assert "tenant_sku" in after["mongodb"][mongodb.PRODUCTS]
    assert {table for table, _, _ in after["cassandra"]} == {
        "events_by_day",
        "rollups_hourly",
        "rollups_daily",
        "user_analytics",
        "event_arrivals",
        "rollup_state",
        "rollup_customers",
        "rollups_by_sku",
    }
    assert {c["name"] for c in after["neo4j"]} >= {"product_key", "category_key", "customer_key"}
