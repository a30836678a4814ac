"""`polyflow recommend` and `polyflow recommendations rebuild`: reading and rebuilding
recommendations from the command line. Imports of drivers and Prefect stay inside the commands,
so `polyflow --help` loads neither."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

recommendations_app = typer.Typer(
    help="The recommendation graph: rebuild it from orders and the catalog.",
    no_args_is_help=True,
)
console = Console(width=None if Console().is_terminal else 140)


def recommend(
    tenant: Annotated[str, typer.Option(help="The tenant.")],
    product: Annotated[
        str | None, typer.Option(help="A product's sku: bought together and similar.")
    ] = None,
    customer: Annotated[
        str | None, typer.Option(help="A customer id: recommended for you.")
    ] = None,
) -> None:
    """Recommendations for a product or a customer: Redis first, the active Neo4j generation
    when Redis has nothing. Exits 1 if the tenant has no recommendations yet."""
    from domain.tenancy import InvalidTenant, check_tenant

    if (product is None) == (customer is None):
        raise typer.BadParameter("give exactly one of --product SKU or --customer ID")
    try:
        check_tenant(tenant)
    except InvalidTenant as error:
        console.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(2) from error
    from stores import recommendations

    try:
        if product is not None:
            answer = recommendations.for_product(tenant, product)
            subject = f"product {product}"
        else:
            answer = recommendations.for_customer(tenant, customer or "")
            subject = f"customer {customer}"
    except Exception as error:  # a down store: say which read failed, not a traceback
        console.print(f"[red]reading recommendations failed[/red]: {escape(str(error))}")
        raise typer.Exit(1) from error
    if answer.generation is None:
        console.print(
            f"[red]tenant {escape(tenant)} has no recommendations yet[/red]: run "
            f"'polyflow recommendations rebuild --tenant {escape(tenant)}'"
        )
        raise typer.Exit(1)
    console.print(
        Text(f"{subject} of {tenant}: from {answer.source}, generation {answer.generation}")
    )
    for kind, ranked in answer.lists.items():
        table = Table(title=Text(kind), min_width=40)
        table.add_column("#", justify="right")
        table.add_column("sku")
        table.add_column("weight", justify="right")
        for rank, (sku, weight) in enumerate(ranked, start=1):
            table.add_row(str(rank), Text(sku), f"{weight:.6f}")
        if not ranked:
            table.add_row("-", "(none)", "-")
        console.print(table)


def _unknown(tenant: str, lookback_days: int) -> bool:
    """What the flow would refuse, checked before a flow run is started (and logged, with a
    traceback, by Prefect)."""
    from datetime import UTC, datetime

    from domain.recommendations import window_start
    from stores import mongodb, postgres

    if tenant in mongodb.catalog_tenants():
        return False
    return not postgres.order_lines(tenant, window_start(datetime.now(UTC), lookback_days))


@recommendations_app.command("rebuild")
def rebuild(
    tenant: Annotated[
        str | None, typer.Option(help="The tenant (default: every tenant with a catalog).")
    ] = None,
    lookback_days: Annotated[int, typer.Option(help="Orders of the last N days count.")] = 180,
    top_n: Annotated[int, typer.Option(help="Products per list, 1 to 100.")] = 10,
    min_support: Annotated[int, typer.Option(help="Orders a pair must share.")] = 1,
    keep: Annotated[int, typer.Option(help="Generations kept in Neo4j, new included.")] = 2,
    dry_run: Annotated[bool, typer.Option(help="Compute and report; write nothing.")] = False,
) -> None:
    """Run the rebuild-recommendations flow and print its summary; exits 1 if it failed."""
    from pydantic import ValidationError

    from domain.recommendations import RebuildParameters

    try:
        parameters = RebuildParameters(
            tenant=tenant,
            lookback_days=lookback_days,
            top_n=top_n,
            min_support=min_support,
            keep=keep,
            dry_run=dry_run,
        )
    except ValidationError as error:
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"])
            console.print(f"[red]--{field.replace('_', '-')}[/red]: {escape(problem['msg'])}")
        raise typer.Exit(2) from None
    if tenant is not None and _unknown(tenant, lookback_days):
        console.print(
            f"[red]unknown tenant {escape(tenant)}[/red]: no catalog and no orders in the last "
            f"{lookback_days} days, nothing to recommend from"
        )
        raise typer.Exit(1)
    from flows.rebuild_recommendations import rebuild_recommendations

    try:
        summaries = rebuild_recommendations(parameters)
    except Exception as error:
        console.print(f"[red]rebuild failed[/red]: {escape(str(error))}")
        raise typer.Exit(1) from error
    for summary in summaries:
        table = Table(title=Text(f"rebuild-recommendations {summary.tenant}"))
        table.add_column("item")
        table.add_column("value")
        for item in (
            "generation",
            "previous",
            "gate",
            "orders",
            "pairs_computed",
            "edges_loaded",
            "products_covered",
            "customers_covered",
            "redis_keys",
        ):
            value = getattr(summary, item)
            table.add_row(item.replace("_", " "), Text(str(value if value is not None else "-")))
        table.add_row("pruned", Text(", ".join(summary.pruned) or "-"))
        for step, seconds in summary.timings.items():
            table.add_row(f"{step} time", f"{seconds:.2f} s")
        console.print(table)  # fmt: skip
