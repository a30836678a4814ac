"""`polyflow check`: the cross-store consistency check from the command line. The flow and the
drivers are imported inside the command, so `polyflow --help` loads neither."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console(width=None if Console().is_terminal else 200)

COLUMNS = (
    "pair",
    "status",
    "records",
    "buckets differing",
    "missing",
    "extra",
    "stale",
    "in flight",
    "repaired",
    "remaining",
    "sample ids",
)


def check(
    tenant: Annotated[
        str | None, typer.Option(help="One tenant; every tenant of the sources when omitted.")
    ] = None,
    repair: Annotated[
        bool, typer.Option(help="Re-derive the drifted records, then check them again.")
    ] = False,
    tolerance: Annotated[int, typer.Option(min=0, help="Drifted records allowed per pair.")] = 0,
) -> None:
    """Compare every derived store with its source of truth (bucketed checksums, then the
    records of the differing buckets); exits 1 on drift beyond the tolerance or a store down."""
    from domain.tenancy import InvalidTenant, check_tenant

    if tenant is not None:
        try:
            check_tenant(tenant)
        except InvalidTenant as error:
            console.print(f"[red]{escape(str(error))}[/red]")
            raise typer.Exit(2) from error
    from flows.check_consistency import ConsistencyDrift, check_consistency

    try:
        report = check_consistency(tenant=tenant, repair=repair, tolerance=tolerance)
    except ConsistencyDrift as failure:
        report = failure.report
    table = Table(title="consistency", show_lines=False)
    table.add_column("tenant")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for each, result in report.results:
        row = result.row()
        style = {"ok": "green", "drift": "red", "error": "red"}[row["status"]]
        if row["status"] == "drift" and result.final.total == 0:
            style = "yellow"
        table.add_row(
            escape(each),
            *(escape(str(row[c])) for c in COLUMNS[:1]),
            f"[{style}]{row['status']}[/{style}]",
            *(escape(str(row[c])) for c in COLUMNS[2:]),
        )
    console.print(table)
    for each, result in report.results:
        if result.error:
            console.print(f"[red]{escape(each)}/{result.pair}[/red]: {escape(result.error)}")
    if not report.passed:
        console.print(f"[red]consistency gate failed[/red]: {len(report.failures)} pair(s)")
        raise typer.Exit(1)
    console.print(f"[green]consistent[/green]: {len(report.results)} pair(s) checked")
