"""Benchmark the money path: placement latency and outbox sync throughput against raw writes.

    python -m bench.orders [--orders 2000] [--direct 30] [--api 10]

Needs the local stack (including the Prefect server and `polyflow serve`) and
PREFECT_API_URL pointing at it, as `make` sets. Measures, in one run:

1. placement latency (median, p95) of `place-order` called directly, delivery to the derived
   stores included, and where that time goes (pricing, the transaction, the delivery, and
   Prefect's orchestration as the rest);
2. the same for runs triggered through the Prefect REST API (create_flow_run, then poll);
3. throughput from `--clients` concurrent clients: the flow against a raw baseline doing the
   same work (catalog read, the PostgreSQL transaction, delivery) with the drivers, no Prefect;
4. outbox sync throughput: `sync-outbox` draining the events of `--orders` orders into Redis,
   Cassandra, Neo4j and MongoDB, against a raw baseline writing the same events with the
   drivers (the projections called directly: no Prefect, no delivery bookkeeping).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, update

from domain.orders import CatalogPrice, OrderRequest, PricedOrder, price_order
from domain.outbox import OutboxMessage
from domain.settings import settings
from flows.place_order import place_order
from flows.runtime import in_process
from flows.sync_outbox import sync_outbox
from stores import mongodb, postgres
from stores.postgres import OutboxDelivery, OutboxEvent
from tasks.orders import price
from tasks.outbox import PROJECTIONS, ROUTES

SKUS = [f"BENCH-{n:03d}" for n in range(50)]
PRICE = Decimal("5.00")
console = Console()


def seed(tenant: str) -> None:
    postgres.ensure_tenant(tenant)
    mongodb.upsert_products(
        tenant,
        [
            {"sku": s, "name": s, "price": str(PRICE), "currency": "EUR", "content_hash": s}
            for s in SKUS
        ],
    )
    postgres.set_inventory(tenant, dict.fromkeys(SKUS, 1_000_000), ROUTES)


def order_request(tenant: str, n: int) -> OrderRequest:
    return OrderRequest(
        tenant=tenant,
        customer={"customer_id": f"c-{n % 200}", "email": f"c{n % 200}@bench.io", "name": "C"},
        lines=[{"sku": SKUS[(n + k) % len(SKUS)], "quantity": 1 + k} for k in range(3)],
        currency="EUR",
        idempotency_key=f"bench-{n}",
        payment_reference=f"pay-{n}",
    )


def latencies(action: Callable[[int], None], count: int) -> list[float]:
    timings = []
    for n in range(count):
        started = time.perf_counter()
        action(n)
        timings.append(time.perf_counter() - started)
    return timings


def api_order(api: str, deployment_id: str, tenant: str, n: int) -> None:
    request = order_request(tenant, n).model_dump(mode="json")
    response = httpx.post(
        f"{api}/deployments/{deployment_id}/create_flow_run",
        json={"parameters": {"request": request}, "idempotency_key": f"{tenant}:{n}"},
        timeout=10,
    )
    if response.status_code >= 300:
        raise RuntimeError(f"create_flow_run refused order {n}: {response.text[:300]}")
    run = response.json()
    while True:
        state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=5).json()["state"]
        if state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            if state["type"] != "COMPLETED":
                raise RuntimeError(f"API-triggered order {n} ended {state['type']}: {state}")
            return
        time.sleep(0.1)


def priced(tenant: str, n: int) -> PricedOrder:
    catalog = {sku: CatalogPrice(str(PRICE), "EUR") for sku in SKUS}
    return price_order(order_request(tenant, n), catalog)


def place_many(tenant: str, count: int) -> None:
    """Place orders straight into PostgreSQL (no sync), 8 at a time, to fill the outbox."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: postgres.place_order(priced(tenant, n), ROUTES), range(count)))


def raw_order(tenant: str, n: int) -> None:
    """What `place-order` does, with the drivers and no Prefect: read the catalog, commit the
    transaction, deliver its events to every store concurrently and stamp them."""
    request = order_request(tenant, n)
    deliver_raw(postgres.place_order(price.fn(request), ROUTES).event_ids)


def deliver_raw(event_ids: list[int]) -> None:
    """Claim the events, write them to their stores concurrently, stamp them."""
    stores = list(PROJECTIONS)
    with (
        postgres.claim_pending(stores, len(event_ids), event_ids) as claim,
        ThreadPoolExecutor(len(stores)) as pool,
    ):
        list(pool.map(lambda s: PROJECTIONS[s](claim.messages_for(s)), claim.stores))
        for store in claim.stores:
            claim.delivered(store)


def concurrent_rate(action: Callable[[int], None], count: int, clients: int) -> float:
    """Orders per second with `clients` threads placing `count` orders between them."""
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(action, range(count)))
    return count / (time.perf_counter() - started)


def breakdown(tenant: str, count: int) -> dict[str, float]:
    """Median seconds of each step of a direct `place-order`, run step by step without Prefect,
    and of the whole flow call; the difference is Prefect's orchestration."""
    steps: dict[str, list[float]] = {"pricing (MongoDB)": [], "transaction (PostgreSQL)": []}
    steps["delivery (4 stores)"] = []
    steps["whole flow call"] = []
    for n in range(count):
        request = order_request(tenant, 200_000 + n)
        started = time.perf_counter()
        order = price.fn(request)
        priced_at = time.perf_counter()
        committed = postgres.place_order(order, ROUTES)
        committed_at = time.perf_counter()
        deliver_raw(committed.event_ids)
        delivered_at = time.perf_counter()
        steps["pricing (MongoDB)"].append(priced_at - started)
        steps["transaction (PostgreSQL)"].append(committed_at - priced_at)
        steps["delivery (4 stores)"].append(delivered_at - committed_at)
        started = time.perf_counter()
        place_order(order_request(tenant, 300_000 + n))
        steps["whole flow call"].append(time.perf_counter() - started)
    medians = {step: statistics.median(times) for step, times in steps.items()}
    work = sum(v for k, v in medians.items() if k != "whole flow call")
    medians["Prefect orchestration (the rest)"] = medians["whole flow call"] - work
    return medians


def events_of(tenant: str) -> list[OutboxMessage]:
    with postgres.unit_of_work() as session:
        rows = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.tenant_id == tenant)
            .order_by(OutboxEvent.event_id)
        )
        return [
            OutboxMessage(
                r.event_id,
                r.tenant_id,
                r.aggregate_type,
                r.aggregate_id,
                r.event_type,
                r.payload,
                r.created_at,
            )
            for r in rows
        ]


def raw_delivery(events: list[OutboxMessage], batch_size: int) -> float:
    """Write the events to every store with the drivers, as sync does, minus Prefect and the
    delivery records; then record them delivered so the flow does not send them again."""
    started = time.perf_counter()
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        for project in PROJECTIONS.values():
            project(batch)
    seconds = time.perf_counter() - started
    with postgres.unit_of_work() as session:
        session.execute(
            update(OutboxDelivery)
            .where(OutboxDelivery.event_id.in_([e.event_id for e in events]))
            .values(delivered_at=func.now())
        )
    return seconds


@contextmanager
def catch_up_paused(api: str) -> Iterator[None]:
    """Pause the scheduled sync-outbox catch-up, so only the measured run drains the outbox."""
    deployment = httpx.get(f"{api}/deployments/name/sync-outbox/catch-up", timeout=5).json()
    httpx.post(
        f"{api}/deployments/{deployment['id']}/pause_deployment", timeout=5
    ).raise_for_status()
    try:
        yield
    finally:
        httpx.post(f"{api}/deployments/{deployment['id']}/resume_deployment", timeout=5)


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, round(share * (len(values) - 1)))]


def main(
    orders: Annotated[int, typer.Option(help="Orders whose events the sync drains.")] = 5000,
    direct: Annotated[int, typer.Option(help="Orders timed through a direct flow call.")] = 30,
    api: Annotated[int, typer.Option(help="Orders timed through the Prefect REST API.")] = 10,
    clients: Annotated[int, typer.Option(help="Concurrent clients for the throughput.")] = 16,
    concurrent: Annotated[int, typer.Option(help="Orders the concurrent clients place.")] = 320,
    batch_size: Annotated[int, typer.Option(help="Events per store write.")] = 2000,
) -> None:
    api_url = settings().prefect_api_url.rstrip("/")
    with catch_up_paused(api_url), in_process():
        measure(api_url, orders, direct, api, clients, concurrent, batch_size)


def measure(
    api_url: str, orders: int, direct: int, api: int, clients: int, concurrent: int, batch: int
) -> None:
    run = uuid.uuid4().hex[:8]
    deployment = httpx.get(f"{api_url}/deployments/name/place-order/api", timeout=5).json()
    tenants = {kind: f"bench-{kind}-{run}" for kind in ("latency", "raw", "flow", "crow", "cflow")}
    for tenant in tenants.values():
        seed(tenant)
    sync_outbox()  # start from an empty backlog, so the flow drains only this run's events
    place_order(order_request(tenants["latency"], -1))  # warm the flow's imports and clients
    steps = breakdown(tenants["latency"], direct)
    direct_times = latencies(lambda n: place_order(order_request(tenants["latency"], n)), direct)
    api_times = latencies(
        lambda n: api_order(api_url, deployment["id"], tenants["latency"], 100_000 + n), api
    )
    raw_orders = concurrent_rate(lambda n: raw_order(tenants["crow"], n), concurrent, clients)
    flow_orders = concurrent_rate(
        lambda n: place_order(order_request(tenants["cflow"], n)), concurrent, clients
    )

    place_many(tenants["raw"], orders)
    raw_events = events_of(tenants["raw"])[len(SKUS) :]
    raw_seconds = raw_delivery(raw_events, batch)

    place_many(tenants["flow"], orders)
    flow_events = events_of(tenants["flow"])[len(SKUS) :]  # after the seed's stock events
    started = time.perf_counter()
    delivered = sync_outbox(batch_size=batch)
    flow_seconds = time.perf_counter() - started
    expected = {
        store: sum(e.event_type in PROJECTIONS[store].events for e in flow_events)
        for store in PROJECTIONS
    }
    # at least this run's events: a concurrent writer's pending events may ride along
    assert all(d.events >= expected[d.store] for d in delivered), (delivered, expected)

    console.print(_breakdown_table(steps))
    table = Table(title=f"orders benchmark ({orders} orders, {len(flow_events)} outbox events)")
    for column in ("measure", "median", "p95", "throughput"):
        table.add_column(column)
    for name, times in (
        ("place-order, direct flow call", direct_times),
        ("place-order, REST API-triggered", api_times),
    ):
        table.add_row(
            name,
            f"{statistics.median(times) * 1000:.0f} ms",
            f"{percentile(times, 0.95) * 1000:.0f} ms",
            f"{len(times) / sum(times):.2f} orders/s",
        )
    table.add_row(f"orders, raw, {clients} clients", "", "", f"{raw_orders:.1f} orders/s")
    table.add_row(f"orders, place-order, {clients} clients", "", "", f"{flow_orders:.1f} orders/s")
    raw_rate = len(raw_events) / raw_seconds
    flow_rate = len(flow_events) / flow_seconds
    table.add_row("outbox, raw driver writes", "", "", f"{raw_rate:,.0f} events/s")
    table.add_row("outbox, sync-outbox flow", "", "", f"{flow_rate:,.0f} events/s")
    console.print(table)
    console.print(f"ratio orders flow/raw: {flow_orders / raw_orders:.2f}")
    console.print(f"ratio sync/raw: {flow_rate / raw_rate:.2f} (target >= 0.8)")


def _breakdown_table(steps: dict[str, float]) -> Table:
    table = Table(title="where a direct place-order's time goes (medians)")
    table.add_column("step")
    table.add_column("median")
    for step, seconds in steps.items():
        table.add_row(step, f"{seconds * 1000:.0f} ms")
    return table


if __name__ == "__main__":
    typer.run(main)
