"""`check-consistency`: compare every derived store with its source of truth, per tenant.

For each tenant and pair (`tasks.consistency.PAIRS`), both sides are reduced to a count and
an order-independent checksum per bucket; only the buckets that differ are compared record by
record, giving the exact missing, extra and stale records. Records still in flight (outbox
events pending for that store, catalog writes newer than the check's start) are not drift.

With `repair=True` the drifted records are re-derived from the source of truth through the
code that wrote them (outbox projections, catalog writers) and the drifted buckets are checked
again. A GX validation is the gate: every pair must have been checked, and its drift (what is
left after a repair) must be within `tolerance`; otherwise the run fails. A store that is down
fails its own pairs, naming it; the other pairs are still checked. Every run leaves a table
artifact per pair and a markdown summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import Field

from domain.consistency import PairResult
from domain.tenancy import TenantId
from expectations.consistency import check_consistency_gate
from flows.reindex_search import reindex_search
from tasks.consistency import PAIRS, check_pair, repair_pair, tenants

REBUILDS = {reindex_search.name: reindex_search}
"""The flows a pair may name as its `rebuild`, by name."""
Tolerance = Annotated[int, Field(ge=0, description="drifted records allowed per pair")]


class ConsistencyDrift(RuntimeError):
    """The gate failed: a pair drifted beyond the tolerance, or could not be checked."""

    def __init__(self, message: str, report: ConsistencyReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ConsistencyReport:
    started_at: datetime
    repair: bool
    tolerance: int
    results: list[tuple[str, PairResult]] = field(default_factory=list)
    """(tenant, result) per tenant and pair, in check order."""
    failures: dict[str, list[str]] = field(default_factory=dict)
    """`tenant/pair` -> why it failed the gate."""

    @property
    def passed(self) -> bool:
        return not self.failures


def _error(state: object, pair: str) -> str:
    error = state.result(raise_on_failure=False)  # type: ignore[attr-defined]
    if isinstance(error, BaseException):
        return (
            f"{type(error).__name__}: {error}"
            if not isinstance(error, ConnectionError)
            else str(error)
        )
    return f"check of {pair} did not complete ({state})"


def _failed(tenant: str, name: str, message: str) -> PairResult:
    source, derived = PAIRS[name].stores
    print(f"{tenant}/{name}: {message}")
    return PairResult(name, source, derived, error=message)


def _check_tenant(
    tenant: str, names: list[str], started_at: datetime, repair: bool
) -> list[tuple[str, PairResult]]:
    """Every pair of one tenant concurrently; then, if asked, repair and re-check the drift."""
    futures = {name: check_pair.submit(tenant, name, started_at) for name in names}
    results: dict[str, PairResult] = {}
    for name, future in futures.items():
        future.wait()
        if future.state.is_completed():
            results[name] = future.result()
        else:
            results[name] = _failed(tenant, name, _error(future.state, name))
    if repair:
        drifted = [
            name for name, result in results.items() if result.checked and result.drift.total
        ]
        repairs = {name: repair_pair.submit(tenant, name, results[name].drift) for name in drifted}
        for name, future in repairs.items():
            future.wait()
            found = results[name]
            if not future.state.is_completed():
                message = f"repair failed: {_error(future.state, name)}"
                results[name] = replace(found, error=message)
                continue
            recheck = check_pair.submit(tenant, name, started_at, found.buckets_differing)
            recheck.wait()
            if not recheck.state.is_completed():
                message = f"re-check failed: {_error(recheck.state, name)}"
                results[name] = replace(found, repaired=future.result(), error=message)
                continue
            repaired, remaining = future.result(), recheck.result().drift
            rebuild = PAIRS[name].rebuild
            if remaining.total and rebuild:
                print(f"{tenant}/{name}: {remaining.total} record(s) left, running {rebuild}")
                REBUILDS[rebuild](tenant=tenant)
                left = remaining.total
                remaining = check_pair(tenant, name, started_at, found.buckets_differing).drift
                repaired += left - remaining.total
            results[name] = replace(found, repaired=repaired, remaining=remaining)
    return [(tenant, results[name]) for name in names]


def _artifact_key(*parts: str) -> str:
    """Artifact keys allow only lower-case letters, digits and '-'; tenant ids also allow '_'."""
    return "-".join(parts).replace("_", "-")


def _publish(report: ConsistencyReport, tenant: str | None) -> None:
    scope = (tenant,) if tenant else ()
    for name in PAIRS:
        rows = [
            {"tenant": t, **result.row()} for t, result in report.results if result.pair == name
        ]
        if rows:
            create_table_artifact(
                key=_artifact_key("consistency", *scope, name),
                table=rows,
                description=f"Consistency of {name} ({PAIRS[name].source.store} -> "
                f"{PAIRS[name].derived.store})",
            )
    lines = [
        f"# Consistency check: {'passed' if report.passed else '**failed**'}",
        "",
        f"Started {report.started_at.isoformat()}, tolerance {report.tolerance} record(s) per "
        f"pair, repair {'on' if report.repair else 'off'}; "
        f"{len({t for t, _ in report.results})} tenant(s), {len(report.results)} pair check(s).",
        "",
        "| tenant | pair | status | records | buckets differing | missing | extra | stale | "
        "in flight | repaired | remaining |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t, result in report.results:
        row = result.row()
        if row["status"] == "ok" and not report.failures.get(f"{t}/{result.pair}"):
            continue
        lines.append(
            f"| {t} | {result.pair} | {row['status']} | {row['records']} | "
            f"{row['buckets differing']} | {row['missing']} | {row['extra']} | {row['stale']} | "
            f"{row['in flight']} | {row['repaired']} | {row['remaining']} |"
        )
    lines += ["", *(f"- `{pair}`: {'; '.join(why)}" for pair, why in report.failures.items())]
    errors = [f"- `{t}/{r.pair}`: {r.error}" for t, r in report.results if r.error]
    if errors:
        lines += ["", "## Errors", "", *errors]
    create_markdown_artifact(
        key=_artifact_key("consistency", *scope, "summary"),
        markdown="\n".join(lines) + "\n",
        description="What the consistency check found, per tenant and pair (only pairs not ok)",
    )


@flow(name="check-consistency", log_prints=True)
def check_consistency(
    tenant: TenantId | None = None,
    repair: bool = False,
    tolerance: Tolerance = 0,
    pairs: list[str] | None = None,
) -> ConsistencyReport:
    """Check one tenant (or every tenant of the sources of truth), optionally repair, gate."""
    unknown = sorted(set(pairs or ()) - set(PAIRS))
    if unknown:
        raise ValueError(f"unknown pair(s) {', '.join(unknown)}; known: {', '.join(PAIRS)}")
    names = [name for name in PAIRS if not pairs or name in pairs]
    started_at = datetime.now(UTC)
    results: list[tuple[str, PairResult]] = []
    for each in [tenant] if tenant else tenants():
        results += _check_tenant(each, names, started_at, repair)
    verdict = check_consistency_gate(results, tolerance)
    report = ConsistencyReport(started_at, repair, tolerance, results, verdict.failures)
    _publish(report, tenant)
    drifted = sum(result.final.total for _, result in results)
    print(
        f"checked {len(results)} pair(s): {drifted} drifted record(s), "
        f"{sum(r.repaired for _, r in results)} repaired, {len(verdict.failures)} failing"
    )
    if not verdict.passed:
        raise ConsistencyDrift(
            "consistency gate failed: "
            + "; ".join(f"{pair} ({', '.join(why)})" for pair, why in verdict.failures.items()),
            report,
        )
    return report
