"""The `polyflow` command: the local stack, schema bootstrap, store health and the flows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from polyflow.cli_analytics import analytics_app, backfill_app, events_app
from polyflow.cli_check import check
from polyflow.cli_orders import inventory_app, order_app, outbox_app, serve
from polyflow.cli_recommend import recommend, recommendations_app

app = typer.Typer(help="polyflow: Prefect pipelines over six real stores.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack of real servers (no Docker).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(order_app, name="order")
app.add_typer(inventory_app, name="inventory")
app.add_typer(outbox_app, name="outbox")
app.add_typer(events_app, name="events")
app.add_typer(analytics_app, name="analytics")
app.add_typer(backfill_app, name="backfill")
app.command()(serve)
app.command()(recommend)
app.command()(check)
app.add_typer(recommendations_app, name="recommendations")


@app.callback()
def main(ctx: typer.Context) -> None:
    """polyflow: Prefect pipelines over six real stores."""
    if ctx.invoked_subcommand and not ctx.resilient_parsing:
        from flows.runtime import in_process

        ctx.with_resource(in_process())


# Piped output (CI, logs) gets a width that fits the tables instead of the 80-column default.
console = Console(width=None if Console().is_terminal else 140)

Only = Annotated[
    list[str] | None,
    typer.Option("--only", help="Just these servers (repeatable), e.g. --only redis."),
]


@stack_app.command("up")
def stack_up(only: Only = None) -> None:
    """Install (cached), start and wait for every server; running ones are left alone."""
    from deployments.stack import stack
    from deployments.stack.base import StackError

    chosen = stack.servers(only=only)
    with console.status(f"starting {', '.join(s.name for s in chosen)} ..."):
        try:
            versions = stack.up(chosen)
        except StackError as error:
            console.print(f"[red]stack up failed[/red]\n{error}")
            raise typer.Exit(1) from error
    for name, version in versions.items():
        console.print(f"[green]ready[/green] {name} {version}")


@stack_app.command("down")
def stack_down(only: Only = None) -> None:
    """Stop exactly the server processes this stack started."""
    from deployments.stack import stack

    stopped = stack.down(stack.servers(only=only))
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status(only: Only = None) -> None:
    """Print store, version, address, pid and readiness of every server."""
    from deployments.stack import stack

    rows = stack.status(stack.servers(only=only))
    table = Table(title="polyflow stack")
    for column in ("server", "version", "address", "pid", "memory", "ready", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.title,
            row.version,
            row.address,
            str(row.pid or "-"),
            f"{row.rss_mb:.0f} MB" if row.rss_mb is not None else "-",
            "[green]yes[/green]" if row.ready else "[red]no[/red]",
            row.detail,
        )
    console.print(table)
    if not all(row.ready for row in rows):
        raise typer.Exit(1)


@app.command()
def bootstrap() -> None:
    """Create every store's schema (tables, indexes, templates, constraints). Idempotent."""
    from stores.registry import STORES

    for store in STORES:
        try:
            store.bootstrap()
        except Exception as error:
            console.print(f"[red]bootstrap failed for {store.name}[/red]: {error}")
            raise typer.Exit(1) from error
        console.print(f"[green]bootstrapped[/green] {store.name}")


@app.command()
def health() -> None:
    """Reachability, version and size of every store; exits 1 if any store is unhealthy."""
    from stores.registry import check_health

    reports = check_health()
    table = Table(title="store health")
    for column in ("store", "address", "healthy", "version", "size", "latency", "error"):
        table.add_column(column)
    for r in reports:
        table.add_row(
            r.store,
            r.address,
            "[green]yes[/green]" if r.healthy else "[red]NO[/red]",
            r.version,
            r.size,
            f"{r.latency_ms:.0f} ms",
            r.error,
        )
    console.print(table)
    if not all(r.healthy for r in reports):
        raise typer.Exit(1)


@app.command()
def smoke(tenant: str = "smoke") -> None:
    """Run the smoke flow: one write and one read per store, through Prefect."""
    from flows.smoke import smoke as smoke_flow

    for line in smoke_flow(tenant=tenant):
        console.print(f"[green]{line}[/green]")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Words to find; query syntax is matched as text.")],
    tenant: Annotated[str, typer.Option(help="The tenant whose products to search.")],
    category: Annotated[
        str | None, typer.Option(help="Only this category or its children.")
    ] = None,
    min_price: Annotated[float | None, typer.Option(help="Lowest price, inclusive.")] = None,
    max_price: Annotated[float | None, typer.Option(help="Highest price, inclusive.")] = None,
    size: Annotated[int, typer.Option(min=1, max=100, help="How many products to show.")] = 10,
) -> None:
    """Search a tenant's products: a ranked table, then how many matched per category."""
    from elasticsearch import ApiError, NotFoundError
    from elasticsearch import ConnectionError as SearchUnreachable

    from domain.tenancy import InvalidTenant
    from stores import elasticsearch

    try:
        result = elasticsearch.search(
            tenant,
            query,
            category=category,
            min_price=min_price,
            max_price=max_price,
            size=size,
        )
    except InvalidTenant as error:
        console.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(2) from error
    except NotFoundError as error:
        console.print(
            f"[red]tenant {escape(tenant)} has no search index yet[/red]: "
            f"run 'polyflow reindex --tenant {escape(tenant)}'"
        )
        raise typer.Exit(1) from error
    except (SearchUnreachable, ApiError) as error:
        console.print(f"[red]search failed (elasticsearch)[/red]: {escape(str(error))}")
        raise typer.Exit(1) from error
    hits = Table(title=Text(f"{result.total} products matching {query!r}"))
    for column in ("#", "sku", "name", "category", "price", "score"):
        hits.add_column(column, justify="right" if column in ("#", "price", "score") else "left")
    for rank, hit in enumerate(result.hits, start=1):
        price = f"{hit.price:.2f} {hit.currency or ''}".strip() if hit.price is not None else "-"
        cells = (hit.sku, hit.name or "", hit.category or "-", price, f"{hit.score:.3f}")
        hits.add_row(str(rank), *(Text(cell) for cell in cells))
    facets = Table(title="categories")
    facets.add_column("category")
    facets.add_column("products", justify="right")
    for name, count in result.facets.items():
        facets.add_row(Text(name), str(count))
    console.print(hits)
    console.print(facets)


catalog_app = typer.Typer(help="Catalog imports.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="A .csv, .jsonl or .parquet catalog file.")],
    tenant: Annotated[str, typer.Option(help="The tenant whose catalog this is.")],
    chunk_size: Annotated[int, typer.Option(min=1, help="Rows validated and written at once.")] = (
        10_000
    ),
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv, jsonl or parquet (default: extension).")
    ] = None,
    max_reject_share: Annotated[
        float, typer.Option(min=0, max=1, help="Fail, publishing nothing, above this share.")
    ] = 0.05,
) -> None:
    """Run ingest-catalog on a file, with a progress bar; exit 1 if the run fails."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from domain.catalog import CatalogFileError
    from flows.ingest_catalog import PROGRESS, ingest_catalog
    from flows.quarantine_gate import RejectShareExceeded

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), console=console
    ) as bar:
        validating = bar.add_task("validating rows", total=None)
        publishing = bar.add_task("publishing chunks", total=None, visible=False)

        def advance(phase: str, done: int, total: int | None) -> None:
            if phase == "validating":
                bar.update(validating, description=f"validating rows ({done:,} read)")
            else:
                bar.update(validating, total=1, completed=1)
                bar.update(publishing, visible=True, total=total, completed=done)

        PROGRESS.set(advance)
        try:
            summary = ingest_catalog(
                str(file),
                tenant,
                chunk_size,
                file_format,
                max_reject_share,  # type: ignore[arg-type]
            )
        except (RejectShareExceeded, CatalogFileError) as error:
            console.print(f"[red]import failed[/red]: {escape(str(error))}")
            raise typer.Exit(1) from error
    table = Table(title=Text(f"{summary.source} -> {summary.tenant}"))
    for column in ("read", "inserted", "updated", "unchanged", "rejected"):
        table.add_column(column, justify="right")
    table.add_row(
        *map(str, (summary.rows_read, summary.inserted, summary.updated, summary.unchanged,
                   summary.rejected))
    )  # fmt: skip
    console.print(table)
    for reject in summary.first_rejects[:5]:
        console.print(Text(f"  line {reject['line']}: {reject['fields']}: {reject['reason']}"))


@app.command()
def reindex(
    tenant: Annotated[str, typer.Option(help="The tenant whose search index to rebuild.")],
    mode: Annotated[
        Literal["full", "incremental"],
        typer.Option(
            help="full: rebuild, gate and swap; incremental: what changed since the last run."
        ),
    ] = "full",
    keep: Annotated[int, typer.Option(min=1, help="Versioned indices to keep, new included.")] = 2,
) -> None:
    """Run the reindex-search flow and print its summary; exits 1 if the run failed."""
    from flows.reindex_search import reindex_search

    try:
        summary = reindex_search(tenant=tenant, mode=mode, keep=keep)
    except Exception as error:
        console.print(f"[red]reindex failed[/red]: {escape(str(error))}")
        raise typer.Exit(1) from error
    table = Table(title=Text(f"reindex-search {tenant}"))
    table.add_column("item")
    table.add_column("value")
    table.add_row("mode", summary.mode)
    table.add_row("index", summary.index)
    table.add_row("replaced", ", ".join(summary.old_indices) or "-")
    table.add_row("documents indexed", str(summary.indexed))
    table.add_row("caught up", str(summary.caught_up))
    table.add_row("pruned", ", ".join(summary.pruned) or "-")
    for phase, seconds in summary.timings.items():
        table.add_row(f"{phase} time", f"{seconds:.2f} s")
    console.print(table)


def run() -> None:
    """The `polyflow` command: settings that do not validate are one line naming the variable
    (never its value), not a traceback."""
    from domain.settings import SettingsError

    try:
        app(prog_name="polyflow")
    except SettingsError as error:
        Console(stderr=True).print(f"[red]{escape(str(error))}[/red]")
        raise SystemExit(2) from None
