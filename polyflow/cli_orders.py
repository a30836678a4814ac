"""`polyflow order | inventory | outbox | serve`: the money path from the command line."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

order_app = typer.Typer(help="Place and cancel orders; show where an order lives.")
inventory_app = typer.Typer(help="Stock levels in PostgreSQL, which owns inventory.")
outbox_app = typer.Typer(help="The transactional outbox feeding the derived stores.")
console = Console(width=None if Console().is_terminal else 140)

Tenant = Annotated[str, typer.Option(help="The tenant.")]


def _quantities(items: list[str]) -> dict[str, int]:
    """Parse SKU=QTY arguments; a malformed one, or a sku given twice, is a usage error naming
    it (the same rule as the order model's: one line per sku, never a silent overwrite)."""
    from domain.orders import repeated_skus

    pairs = []
    for item in items:
        sku, sep, qty = item.rpartition("=")
        if not sep or not sku or not qty.lstrip("-").isdigit():
            raise typer.BadParameter(f"{item!r} is not SKU=QUANTITY")
        pairs.append((sku, int(qty)))
    repeated = repeated_skus([sku for sku, _ in pairs])
    if repeated:
        raise typer.BadParameter(
            f"sku given more than once: {', '.join(repeated)}; give each sku once with its "
            "total quantity"
        )
    return dict(pairs)


def show_trail(tenant: str, order_id: str) -> None:
    from stores.order_trail import order_trail

    table = Table(title=f"order {order_id} of {tenant}")
    table.add_column("store")
    table.add_column("what it holds")
    for store, holding in order_trail(tenant, order_id).items():
        table.add_row(store, escape(holding))
    console.print(table)


@order_app.command("place")
def place(
    tenant: Tenant,
    items: Annotated[list[str], typer.Argument(help="SKU=QUANTITY, one per line item.")],
    customer: Annotated[str, typer.Option(help="Customer id.")] = "c-demo",
    email: Annotated[str, typer.Option(help="Customer email.")] = "demo@example.com",
    name: Annotated[str, typer.Option(help="Customer name.")] = "Demo Customer",
    currency: Annotated[str, typer.Option(help="ISO 4217, as in the catalog.")] = "EUR",
    key: Annotated[str | None, typer.Option(help="Idempotency key (default: random).")] = None,
    via_api: Annotated[
        bool, typer.Option(help="Trigger the served deployment through the Prefect API.")
    ] = False,
) -> None:
    """Place an order and show where it lives; exits 1 with the reason if it was refused."""
    from pydantic import ValidationError

    from domain.orders import OrderRequest, order_id_for

    key = key or uuid.uuid4().hex
    try:
        request = OrderRequest(
            tenant=tenant,
            customer={"customer_id": customer, "email": email, "name": name},
            lines=[{"sku": s, "quantity": q} for s, q in _quantities(items).items()],
            currency=currency,
            idempotency_key=key,
            payment_reference=f"demo-{key}",
        )
    except ValidationError as error:
        console.print(f"[red]invalid order[/red]: {escape(str(error))}")
        raise typer.Exit(1) from error
    if via_api:
        from prefect.deployments import run_deployment

        run = run_deployment(
            "place-order/api",
            parameters={"request": request.model_dump(mode="json")},
            idempotency_key=f"{tenant}:{key}",
            timeout=300,
        )
        console.print(f"flow run {run.name} ({run.id}) through the API: {run.state.name}")
        if not run.state.is_completed():
            console.print(f"[red]order failed[/red]: {escape(run.state.message or '')}")
            raise typer.Exit(1)
    else:
        from domain.orders import OrderRejected
        from flows.place_order import place_order

        try:
            place_order(request)
        except OrderRejected as error:
            console.print(f"[red]order refused[/red]: {escape(str(error))}")
            raise typer.Exit(1) from error
    show_trail(tenant, order_id_for(tenant, key))


@order_app.command("cancel")
def cancel(tenant: Tenant, order_id: str) -> None:
    """Cancel an order (releases its stock) and show where it lives."""
    from domain.orders import OrderRejected
    from flows.place_order import cancel_order

    try:
        cancel_order(tenant, order_id)
    except OrderRejected as error:
        console.print(f"[red]cancel refused[/red]: {escape(str(error))}")
        raise typer.Exit(1) from error
    show_trail(tenant, order_id)


@order_app.command("show")
def show(
    tenant: Tenant,
    order_id: Annotated[str | None, typer.Argument(help="Default: the 5 latest orders.")] = None,
) -> None:
    """What PostgreSQL, Redis, Cassandra and Neo4j hold of an order."""
    from stores.postgres import latest_orders

    for shown in [order_id] if order_id else latest_orders(tenant):
        show_trail(tenant, shown)


@inventory_app.command("set")
def inventory_set(
    tenant: Tenant,
    items: Annotated[list[str], typer.Argument(help="SKU=QUANTITY, absolute stock levels.")],
) -> None:
    """Set absolute stock levels (the tenant is created if new); Redis learns them through
    the outbox before this returns."""
    from pydantic import ValidationError

    from flows.place_order import set_stock
    from stores import postgres

    levels = _quantities(items)
    if any(level < 0 for level in levels.values()):
        raise typer.BadParameter("stock levels cannot be negative")
    try:
        set_stock(tenant, levels)
    except ValidationError as error:
        console.print(f"[red]invalid stock levels[/red]: {escape(str(error))}")
        raise typer.Exit(1) from error
    console.print(postgres.get_inventory(tenant, list(levels)))


@outbox_app.command("sync")
def outbox_sync() -> None:
    """Deliver pending outbox events to every derived store; exits 1 naming any store behind."""
    from flows.sync_outbox import StoresBehind, sync_outbox

    try:
        delivered = sync_outbox()
    except StoresBehind as error:
        console.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(1) from error
    for result in delivered:
        console.print(f"{result.store}: {result.events} events delivered")


@outbox_app.command("status")
def outbox_status(
    limit: Annotated[int, typer.Option(help="Dead letters to list at most.")] = 20,
) -> None:
    """Pending events per store, and the dead letters with the error each store gave."""
    from stores import postgres
    from tasks.outbox import PROJECTIONS

    pending = postgres.pending_deliveries(list(PROJECTIONS))
    dead_counts = postgres.pending_deliveries(list(PROJECTIONS), dead=True)
    dead = postgres.dead_letters(limit)
    table = Table(title="outbox")
    for column in ("store", "pending", "dead letters"):
        table.add_column(column)
    for store, count in pending.items():
        table.add_row(store, str(count), str(dead_counts[store]))
    console.print(table)
    if dead:
        letters = Table(title=f"dead letters (oldest {limit}; 'polyflow outbox replay' re-queues)")
        for column in ("event", "store", "tenant", "type", "aggregate", "attempts", "error"):
            letters.add_column(column)
        for d in dead:
            letters.add_row(
                str(d.event_id),
                d.store,
                d.tenant,
                d.event_type,
                escape(d.aggregate_id),
                str(d.attempts),
                escape(d.error[:200]),
            )
        console.print(letters)


@outbox_app.command("replay")
def outbox_replay(
    store: Annotated[str | None, typer.Option(help="Only this store's dead letters.")] = None,
    event: Annotated[
        list[int] | None, typer.Option("--event", help="Only these event ids (repeatable).")
    ] = None,
) -> None:
    """Put dead letters back in their store's queue; the next sync delivers them."""
    from stores import postgres
    from tasks.outbox import PROJECTIONS

    if store is not None and store not in PROJECTIONS:
        raise typer.BadParameter(f"unknown store {store!r}; one of {', '.join(PROJECTIONS)}")
    requeued = postgres.replay_dead_letters(store, event)
    console.print(f"{requeued} dead letter(s) re-queued; run 'polyflow outbox sync' to deliver")


def serve() -> None:
    """Serve the order and outbox deployments to the Prefect server and run them.

    Registers place-order, cancel-order, upsert-user and the sync-outbox catch-up schedule with
    the server at PREFECT_API_URL, then executes their runs until stopped.
    """
    from deployments.serve import serve_deployments

    serve_deployments()
