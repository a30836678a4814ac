"""The gate of a consistency check: every pair checked, and its drift within the tolerance.

One row per (tenant, pair): whether both stores could be read, and by how many records its
drift (after a repair: what is left) exceeds the tolerance. GX validates the frame; the rows
it flags are the pairs that fail the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from domain.consistency import PairResult
from expectations.validation import FrameSuite


def consistency_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="consistency_gate",
        expectations=[
            gxe.ExpectColumnValuesToBeInSet(
                column="checked",
                value_set=[1],
                meta={"reason": "a store of the pair could not be read"},
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="over_tolerance",
                max_value=0,
                meta={"reason": "drift beyond the tolerance"},
            ),
        ],
    )


CONSISTENCY_GATE = FrameSuite("consistency", consistency_suite)


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    failures: dict[str, list[str]]
    """`tenant/pair` -> the reasons it failed."""


def check_consistency_gate(
    results: Sequence[tuple[str, PairResult]], tolerance: int
) -> GateVerdict:
    """Validate (tenant, result) rows; an expectation that errors is a bug, so raises."""
    if not results:
        return GateVerdict(True, {})
    names = [f"{tenant}/{result.pair}" for tenant, result in results]
    frame = pd.DataFrame(
        [
            {
                "pair": name,
                "checked": int(result.checked),
                "over_tolerance": max(result.final.total - tolerance, 0) if result.checked else 0,
            }
            for name, (_, result) in zip(names, results, strict=True)
        ]
    )
    failures: dict[str, list[str]] = {}
    for outcome in CONSISTENCY_GATE.outcomes(frame, result_format="COMPLETE"):
        if outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {outcome.expectation_config.type} failed to run: "
                f"{outcome.exception_info.get('exception_message')}"
            )
        if not outcome.success:
            for index in outcome.result.get("unexpected_index_list") or []:
                failures.setdefault(names[index], []).append(
                    outcome.expectation_config.meta["reason"]
                )
    return GateVerdict(not failures, failures)
