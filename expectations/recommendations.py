"""The gate of a recommendation rebuild: the loaded generation must be exactly what was computed.

Two suites. The digest suite compares one row of counts and checksums, the computed side against
what Neo4j now holds, per kind: bought-together edges (pair, support, weight), similar edges
(pair, score) and customer seeds. The edge suite looks at every loaded edge: no self-edge, both
endpoints in the catalog, co-purchase symmetric (the reverse edge is there with the same support
and weight), weights and scores in (0, 1]. When a check fails, `differences` says which edges
are missing, extra or changed, so the artifact can name them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from domain.recommendations import (
    ComputedGeneration,
    Digest,
    bought_rows,
    digest,
    seed_rows,
    similar_rows,
)
from expectations.validation import FrameSuite

KINDS = ("bought", "similar", "seeds")
SAMPLE = 10
"""Edges named per kind of difference in a failure's details."""


def digest_suite() -> gx.ExpectationSuite:
    expectations = []
    for kind in KINDS:
        for measure in ("count", "checksum"):
            expectations.append(
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A=f"computed_{kind}_{measure}",
                    column_B=f"loaded_{kind}_{measure}",
                    meta={"reason": f"the loaded {kind} {measure} differs from the computed one"},
                )
            )
    return gx.ExpectationSuite(name="recommendation_digest_gate", expectations=expectations)


def edge_suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="recommendation_edge_gate",
        expectations=[
            gxe.ExpectColumnValuesToBeInSet(
                column="self_edge", value_set=[False], meta={"reason": "an edge is a self-edge"}
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="endpoints_in_catalog",
                value_set=[True],
                meta={"reason": "an edge ends at a product that is not in the catalog"},
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="symmetric",
                value_set=[True],
                meta={"reason": "a bought-together edge has no reverse with the same weight"},
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="weight",
                min_value=0,
                max_value=1,
                strict_min=True,
                meta={"reason": "a weight or score is outside (0, 1]"},
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="support",
                min_value=1,
                meta={"reason": "a bought-together edge has no support"},
            ),
        ],
    )


DIGEST_GATE = FrameSuite("recommendation-digests", digest_suite)
EDGE_GATE = FrameSuite("recommendation-edges", edge_suite)


@dataclass(frozen=True)
class LoadedGeneration:
    """What Neo4j holds of one generation, as frames with the computed side's columns."""

    bought: pd.DataFrame
    similar: pd.DataFrame
    seeds: pd.DataFrame


def loaded_generation(
    bought: Sequence[Mapping[str, Any]],
    similar: Sequence[Mapping[str, Any]],
    seeds: Sequence[Mapping[str, Any]],
) -> LoadedGeneration:
    """Frames from the records Neo4j returned; seed sku lists become sorted tuples."""
    return LoadedGeneration(
        bought=_frame(bought, ["source", "target", "support", "weight", "target_tenant"]),
        similar=_frame(similar, ["source", "target", "score", "target_tenant"]),
        seeds=pd.DataFrame(
            {
                "customer_id": pd.Series([s["customer_id"] for s in seeds], dtype=object),
                "skus": pd.Series([tuple(sorted(s["skus"])) for s in seeds], dtype=object),
            }
        ),
    )


def _frame(records: Sequence[Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(records), columns=columns).astype(
        {"source": object, "target": object}
    )


@dataclass(frozen=True)
class RecommendationGate:
    """Whether the generation may be switched to, both sides' digests, and what differed."""

    passed: bool
    failures: list[str]
    computed: dict[str, Digest]
    loaded: dict[str, Digest]
    differences: list[str]


def edge_frame(loaded: LoadedGeneration, tenant: str, catalog: Iterable[str]) -> pd.DataFrame:
    """One row per loaded edge of either kind, with the properties the edge suite checks."""
    known = set(catalog)
    bought, similar = loaded.bought, loaded.similar
    reverse = set(
        zip(bought["target"], bought["source"], bought["support"], bought["weight"], strict=True)
    )
    edges = zip(
        bought["source"], bought["target"], bought["support"], bought["weight"], strict=True
    )
    symmetric = [edge in reverse for edge in edges]
    rows = pd.DataFrame(
        {
            "source": pd.concat([bought["source"], similar["source"]], ignore_index=True),
            "target": pd.concat([bought["target"], similar["target"]], ignore_index=True),
            "weight": pd.concat([bought["weight"], similar["score"]], ignore_index=True),
            "support": pd.concat(
                [bought["support"], pd.Series(1, index=similar.index)], ignore_index=True
            ),
            "symmetric": symmetric + [True] * len(similar),
            "target_tenant": pd.concat(
                [bought["target_tenant"], similar["target_tenant"]], ignore_index=True
            ),
        }
    )
    rows["self_edge"] = rows["source"] == rows["target"]
    rows["endpoints_in_catalog"] = (
        rows["source"].isin(known) & rows["target"].isin(known) & (rows["target_tenant"] == tenant)
    )
    return rows.astype({"weight": float, "support": "int64", "symmetric": bool})


def differences(computed: ComputedGeneration, loaded: LoadedGeneration) -> list[str]:
    """Up to `SAMPLE` edges per kind that are missing, extra or changed in the load."""
    found = []
    for kind, left, right in (
        ("bought", set(bought_rows(computed.bought)), set(bought_rows(loaded.bought))),
        ("similar", set(similar_rows(computed.similar)), set(similar_rows(loaded.similar))),
        ("seeds", set(seed_rows(computed.seeds)), set(seed_rows(loaded.seeds))),
    ):
        missing, extra = sorted(left - right, key=str), sorted(right - left, key=str)
        if missing:
            found.append(f"{kind}: {len(missing)} computed but not loaded, e.g. {missing[:SAMPLE]}")
        if extra:
            found.append(f"{kind}: {len(extra)} loaded but not computed, e.g. {extra[:SAMPLE]}")
    return found


def _failures(suite: FrameSuite, frame: pd.DataFrame) -> list[str]:
    failures = []
    for outcome in suite.outcomes(frame):
        if outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {outcome.expectation_config.type} failed to run: "
                f"{outcome.exception_info.get('exception_message')}"
            )
        if not outcome.success:
            reason = outcome.expectation_config.meta["reason"]
            sample = []
            if outcome.expectation_config.type.startswith("expect_column_values"):
                sample = outcome.result.get("partial_unexpected_list") or []
            failures.append(f"{reason}: e.g. {sample[:5]}" if sample else reason)
    return failures


def check_recommendation_gate(
    computed: ComputedGeneration, loaded: LoadedGeneration
) -> RecommendationGate:
    """Validate the loaded generation against the computed one with both suites."""
    computed_digests = {
        "bought": computed.bought_digest,
        "similar": computed.similar_digest,
        "seeds": computed.seeds_digest,
    }
    loaded_digests = {
        "bought": digest(bought_rows(loaded.bought)),
        "similar": digest(similar_rows(loaded.similar)),
        "seeds": digest(seed_rows(loaded.seeds)),
    }
    row: dict[str, Any] = {}
    for side, digests in (("computed", computed_digests), ("loaded", loaded_digests)):
        for kind, found in digests.items():
            row[f"{side}_{kind}_count"] = found.count
            row[f"{side}_{kind}_checksum"] = found.checksum
    failures = _failures(DIGEST_GATE, pd.DataFrame([row]))
    edges = edge_frame(loaded, computed.tenant, computed.catalog)
    if not edges.empty:
        failures += _failures(EDGE_GATE, edges)
    return RecommendationGate(
        passed=not failures,
        failures=failures,
        computed=computed_digests,
        loaded=loaded_digests,
        differences=differences(computed, loaded) if failures else [],
    )
