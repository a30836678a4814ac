"""The reconciliation gate of analytics rollups: an hour's order metrics from Cassandra's events
must equal what PostgreSQL, the source of truth, says for that hour.

One frame row per (hour, metric) with both values spelt exactly (counts as integers, revenue
with its currency's decimals); GX checks the two columns are equal, row by row, and the failing
rows name the hour, the metric and both values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from domain.analytics import Mismatch
from expectations.validation import FrameSuite


def reconciliation_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="rollup_reconciliation",
        expectations=[
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="cassandra",
                column_B="postgres",
                meta={"reason": "Cassandra's events and PostgreSQL disagree"},
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="postgres"),
        ],
    )


RECONCILIATION = FrameSuite("rollup_reconciliation", reconciliation_suite)


def reconcile(rows: Sequence[dict[str, Any]]) -> list[Mismatch]:
    """The rows (hour, metric, cassandra, postgres) whose two values differ."""
    if not rows:
        return []
    frame = pd.DataFrame(list(rows), dtype=object)
    bad: set[int] = set()
    for outcome in RECONCILIATION.outcomes(frame, result_format="COMPLETE"):
        indexes = outcome.result.get("unexpected_index_list")
        if not outcome.success and not indexes:
            raise RuntimeError(f"the reconciliation gate could not run: {outcome.exception_info}")
        bad |= {int(i) for i in indexes or ()}
    return [
        Mismatch(
            hour=datetime.fromisoformat(rows[i]["hour"]),
            metric=rows[i]["metric"],
            cassandra=rows[i]["cassandra"],
            postgres=rows[i]["postgres"],
        )
        for i in sorted(bad)
    ]
