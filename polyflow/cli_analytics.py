"""`polyflow events`, `polyflow analytics` and `polyflow backfill`: storefront events, rollups
and backfills. Heavy imports (Prefect, drivers, GX) happen inside the commands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(width=None if Console().is_terminal else 140)
events_app = typer.Typer(help="Storefront event files.", no_args_is_help=True)
analytics_app = typer.Typer(help="Hourly and daily rollups in Cassandra.", no_args_is_help=True)
backfill_app = typer.Typer(help="Replay a flow over a date range.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="The tenant.")]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day like 2026-12-01") from None


@events_app.command("generate")
def events_generate(
    file: Annotated[Path, typer.Argument(help="Where to write: .jsonl or .parquet.")],
    tenant: Tenant,
    events: Annotated[int, typer.Option(min=1, help="How many events.")] = 1000,
    day: Annotated[
        str | None,
        typer.Option(
            help="The (last) day; events after now are left out (default: the last 24 hours)."
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days covered, ending with --day.")] = 1,
    seed: Annotated[int, typer.Option(help="Same seed, same events.")] = 1,
    customers: Annotated[
        str | None, typer.Option(help="Comma-separated shopper ids (default c-0001..c-0200).")
    ] = None,
    skus: Annotated[str | None, typer.Option(help="Comma-separated skus.")] = None,
) -> None:
    """Write deterministic synthetic storefront traffic."""
    from domain.traffic import synthetic_events
    from expectations.events import write_events_file

    options: dict = {}
    now = datetime.now(UTC)
    if day:
        start = datetime.combine(_day(day), datetime.min.time(), UTC) - timedelta(days=days - 1)
        end = start + timedelta(days=days)
    else:
        start, end = now - timedelta(days=days), now
    if now <= start:
        raise typer.BadParameter(f"{day} has not begun yet")
    options["until"] = now
    if customers:
        options["customers"] = tuple(customers.split(","))
    if skus:
        options["skus"] = tuple(skus.split(","))
    written = write_events_file(
        file, synthetic_events(tenant, start, end, events, seed=seed, **options)
    )
    console.print(f"wrote {written} events of {tenant} to {file}")


@events_app.command("ingest")
def events_ingest(
    file: Annotated[Path, typer.Argument(help="A .jsonl or .parquet event file.")],
    tenant: Tenant,
    chunk_size: Annotated[int, typer.Option(min=1)] = 20_000,
    max_reject_share: Annotated[float, typer.Option(min=0, max=1)] = 0.05,
) -> None:
    """Run `ingest-events` on a file."""
    from flows.ingest_events import ingest_events
    from flows.quarantine_gate import RejectShareExceeded

    try:
        summary = ingest_events(
            str(file), tenant, chunk_size=chunk_size, max_reject_share=max_reject_share
        )
    except (RejectShareExceeded, ValueError) as error:
        console.print(f"[red]ingest failed[/red]: {error}")
        raise typer.Exit(1) from error
    console.print(f"{summary.rows_read} rows: {summary.stored} stored, {summary.rejected} rejected")


@analytics_app.command("rollup")
def analytics_rollup(
    tenant: Tenant,
    day: Annotated[str | None, typer.Option(help="Roll up this whole day.")] = None,
) -> None:
    """Run `rollup-analytics`: the hours since the watermark, or one whole day."""
    from flows.rollup_analytics import ReconciliationFailed, rollup_analytics

    start = end = None
    if day:
        start = datetime.combine(_day(day), datetime.min.time(), UTC)
        end = start + timedelta(days=1)
    try:
        result = rollup_analytics(tenant, start=start, end=end)
    except ReconciliationFailed as error:
        console.print(f"[red]reconciliation failed[/red]: {error}")
        raise typer.Exit(1) from error
    console.print(f"rolled up {result['hours']} hours of {tenant}")


SHOWN = (
    ("hour", ""),
    ("orders", "orders_placed"),
    ("cancelled", "orders_cancelled"),
    ("revenue", "revenue:"),
    ("views", "views"),
    ("searches", "searches"),
    ("carts", "carts"),
    ("checkouts", "checkouts"),
    ("customers", "customers"),
    ("view>cart", "view_to_cart"),
    ("cart>checkout", "cart_to_checkout"),
    ("checkout>order", "checkout_to_order"),
)


def _cells(rows: dict) -> list[str]:
    cells = []
    for _, metric in SHOWN[1:]:
        if metric == "revenue:":
            revenue = sorted(
                (m[len(metric) :], v) for m, (v, _) in rows.items() if m.startswith(metric)
            )
            cells.append(" ".join(f"{amount} {currency}" for currency, amount in revenue))
        else:
            cells.append(str(rows[metric][0]) if metric in rows else "")
    return cells


@analytics_app.command("show")
def analytics_show(
    tenant: Tenant,
    day: Annotated[str, typer.Option(help="The day, like 2026-12-01.")],
) -> None:
    """Print a day's hourly rollup and its daily total as a table."""
    from stores import cassandra

    the_day = _day(day)
    hours = cassandra.hourly_rows(tenant, the_day)
    daily = cassandra.daily_rows(tenant, the_day.strftime("%Y-%m")).get(the_day, {})
    if not hours and not daily:
        console.print(f"no rollup of {tenant} for {the_day}")
        return
    table = Table(title=f"{tenant} {the_day} (UTC hours)")
    for column, _ in SHOWN:
        table.add_column(column, justify="left" if column == "hour" else "right")
    for hour in sorted(hours):
        table.add_row(f"{hour:02d}:00", *_cells(hours[hour]))
    table.add_row("day", *_cells(daily), style="bold")
    console.print(table)
    units = sorted(
        ((m.split(":", 1)[1], v) for m, (v, _) in daily.items() if m.startswith("units:")),
        key=lambda item: (-item[1], item[0]),
    )
    if units:
        console.print("units: " + ", ".join(f"{sku} {int(n)}" for sku, n in units[:10]))


@backfill_app.command("run")
def backfill_run(
    flow: Annotated[str, typer.Argument(help="rollup-analytics or replay-analytics.")],
    tenant: Tenant,
    start: Annotated[str, typer.Option(help="First day.")],
    end: Annotated[str, typer.Option(help="Last day (included).")],
    partition: Annotated[str, typer.Option(help="hour or day.")] = "day",
    max_concurrent: Annotated[int, typer.Option(min=1, max=32)] = 4,
    reprocess: Annotated[str, typer.Option(help="missing, failed or all.")] = "missing",
    dry_run: Annotated[bool, typer.Option(help="Only list the partitions.")] = False,
) -> None:
    """Start the `backfill` deployment through the Prefect API and wait for it."""
    from domain.analytics import BackfillError, check_backfill

    try:
        today = datetime.now(UTC).date()
        check_backfill(flow, _day(start), _day(end), partition, reprocess, today)
    except BackfillError as error:
        console.print(f"[red]refused[/red]: {error}")
        raise typer.Exit(2) from error
    from prefect.deployments import run_deployment

    from flows.backfill import BACKFILL_DEPLOYMENT

    run = run_deployment(
        BACKFILL_DEPLOYMENT,
        parameters={
            "flow_name": flow,
            "tenant": tenant,
            "start": start,
            "end": end,
            "partition_size": partition,
            "max_concurrent": max_concurrent,
            "reprocess": reprocess,
            "dry_run": dry_run,
        },
    )
    console.print(f"backfill run {run.name}: {run.state.name if run.state else '?'}")
    backfill_status(flow, tenant)
    if not (run.state and run.state.is_completed()):
        raise typer.Exit(1)


@backfill_app.command("status")
def backfill_status(
    flow: Annotated[str, typer.Argument(help="rollup-analytics or replay-analytics.")],
    tenant: Tenant,
) -> None:
    """The recorded status of every partition of a flow for a tenant (PostgreSQL)."""
    from stores import postgres

    table = Table(title=f"backfill partitions of {flow} for {tenant}")
    for column in ("partition", "status", "attempts", "flow run", "updated", "reason"):
        table.add_column(column)
    for row in postgres.partition_statuses(flow, tenant).values():
        table.add_row(
            row.partition,
            row.status,
            str(row.attempts),
            row.flow_run_id or "",
            row.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.reason or "",
        )
    console.print(table)
