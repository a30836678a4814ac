"""The `polyflow` command: the local stack, schema bootstrap, store health and the flows."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deployments.stack import stack
from deployments.stack.base import StackError

app = typer.Typer(help="polyflow: Prefect pipelines over six real stores.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack of real servers (no Docker).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
# Piped output (CI, logs) gets a width that fits the tables instead of the 80-column default.
console = Console(width=None if Console().is_terminal else 140)

Only = Annotated[
    list[str] | None,
    typer.Option("--only", help="Just these servers (repeatable), e.g. --only redis."),
]


@stack_app.command("up")
def stack_up(only: Only = None) -> None:
    """Install (cached), start and wait for every server; running ones are left alone."""
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
    stopped = stack.down(stack.servers(only=only))
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status(only: Only = None) -> None:
    """Print store, version, address, pid and readiness of every server."""
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
