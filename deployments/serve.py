"""The deployments polyflow serves, and `serve_deployments`, which runs them.

`place-order`, `cancel-order` and `upsert-user` are triggered through the Prefect API (REST
`create_flow_run` or `run_deployment`), and `sync-outbox` also runs on a schedule as the
catch-up for deliveries that a down store delayed.
"""

from __future__ import annotations

from datetime import timedelta

from prefect import serve

from flows.backfill import PARTITION_DEPLOYMENT, backfill
from flows.check_consistency import check_consistency
from flows.ingest_events import ingest_events
from flows.place_order import cancel_order, place_order, set_stock, upsert_user
from flows.rebuild_recommendations import rebuild_recommendations
from flows.rollup_analytics import replay_analytics, rollup_analytics
from flows.sync_outbox import sync_outbox

API = "api"
CATCH_UP = "catch-up"
CATCH_UP_EVERY = timedelta(minutes=2)
HOURLY = "hourly"
HOURLY_CRON = "5 * * * *"
"""Five past every hour: the rollup of every tenant, late events and failed hours included."""
NIGHTLY = "nightly"
NIGHTLY_CRON = "30 2 * * *"
"""02:30 UTC: every tenant's recommendations, rebuilt from the day's orders."""
CONSISTENCY_CRON = "15 3 * * *"
"""03:15 UTC, after the rebuilds: every tenant checked, nothing repaired."""
CONCURRENT_RUNS = 8
"""Flow runs this process executes at once; each is a subprocess, so this bounds memory."""

DEPLOYMENTS = (
    (place_order.name, API),
    (cancel_order.name, API),
    (upsert_user.name, API),
    (set_stock.name, API),
    (sync_outbox.name, CATCH_UP),
    (rebuild_recommendations.name, NIGHTLY),
    (ingest_events.name, API),
    (rollup_analytics.name, HOURLY),
    (rollup_analytics.name, PARTITION_DEPLOYMENT),
    (replay_analytics.name, PARTITION_DEPLOYMENT),
    (backfill.name, API),
    (check_consistency.name, NIGHTLY),
    (check_consistency.name, API),
)


def serve_deployments() -> None:
    """Register the deployments with the Prefect server and execute their runs until stopped."""
    serve(
        place_order.to_deployment(name=API, tags=["orders"]),
        cancel_order.to_deployment(name=API, tags=["orders"]),
        upsert_user.to_deployment(name=API, tags=["users"]),
        set_stock.to_deployment(name=API, tags=["inventory"]),
        sync_outbox.to_deployment(name=CATCH_UP, interval=CATCH_UP_EVERY, tags=["outbox"]),
        rebuild_recommendations.to_deployment(
            name=NIGHTLY, cron=NIGHTLY_CRON, concurrency_limit=1, tags=["recommendations"]
        ),
        ingest_events.to_deployment(name=API, tags=["analytics"]),
        rollup_analytics.to_deployment(name=HOURLY, cron=HOURLY_CRON, tags=["analytics"]),
        rollup_analytics.to_deployment(name=PARTITION_DEPLOYMENT, tags=["analytics"]),
        replay_analytics.to_deployment(name=PARTITION_DEPLOYMENT, tags=["analytics"]),
        backfill.to_deployment(name=API, tags=["analytics", "backfill"]),
        check_consistency.to_deployment(
            name=NIGHTLY, cron=CONSISTENCY_CRON, concurrency_limit=1, tags=["consistency"]
        ),
        check_consistency.to_deployment(name=API, tags=["consistency"]),
        limit=CONCURRENT_RUNS,
        print_starting_message=False,
    )
