"""The gate of a recommendation rebuild: the loaded generation must be exactly what was computed.

What Neo4j now holds of the generation is read back into frames, and reduced to one row of facts:
per kind (bought-together edges with pair, support, weight and rank; similar edges with pair and
score; customer seeds) the count and checksum of both sides, and how many loaded edges break a
rule: self-edges, endpoints outside the catalog, co-purchase edges without a reverse of the same
support and weight, weights or scores outside (0, 1], co-purchase without support. One GX suite
validates that row: counts and checksums equal, every violation count zero. Counting in pandas
and validating the counts keeps the gate at a fraction of a second for 10^5 edges, where
row-by-row expectations took seconds. When a check fails, `differences` names the edges that
are missing, extra or changed, and the violations come with examples, for the artifact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from domain.recommendations import (
    BOUGHT_DIGEST,
    SEEDS_DIGEST,
    SIMILAR_DIGEST,
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
VIOLATIONS = {
    "self_edges": "an edge is a self-edge",
    "outside_catalog": "an edge ends at a product that is not in the catalog",
    "asymmetric": "a bought-together edge has no reverse with the same support and weight",
    "out_of_range": "a weight or score is outside (0, 1]",
    "unsupported": "a bought-together edge has no support",
}


def gate_suite() -> gx.ExpectationSuite:
    expectations: list[Any] = []
    for kind in KINDS:
        for measure in ("count", "checksum"):
            expectations.append(
                gxe.ExpectColumnPairValuesToBeEqual(
                    column_A=f"computed_{kind}_{measure}",
                    column_B=f"loaded_{kind}_{measure}",
                    meta={"reason": f"the loaded {kind} {measure} differs from the computed one"},
                )
            )
    for column, reason in VIOLATIONS.items():
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column, min_value=0, max_value=0, meta={"reason": reason, "facts": column}
            )
        )
    return gx.ExpectationSuite(name="recommendation_gate", expectations=expectations)


RECOMMENDATION_GATE = FrameSuite("recommendation-gate", gate_suite)


@dataclass(frozen=True)
class LoadedGeneration:
    """What Neo4j holds of one generation, as frames with the computed side's columns."""

    bought: pd.DataFrame
    similar: pd.DataFrame
    seeds: pd.DataFrame


def loaded_generation(
    bought: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    similar: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    seeds: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
) -> LoadedGeneration:
    """Frames from what Neo4j returned, as columns or as records; seed sku lists become sorted
    tuples."""
    seed_frame = _frame(seeds, ["customer_id", "skus"])
    seed_frame["skus"] = pd.Series(
        [tuple(sorted(skus)) for skus in seed_frame["skus"]], dtype=object
    )
    return LoadedGeneration(
        bought=_frame(bought, ["source", "target", "support", "weight", "rank", "target_tenant"]),
        similar=_frame(similar, ["source", "target", "score", "target_tenant"]),
        seeds=seed_frame.astype({"customer_id": object}),
    )


def _frame(
    found: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]], columns: list[str]
) -> pd.DataFrame:
    if isinstance(found, Mapping):
        frame = pd.DataFrame({column: pd.Series(found[column], dtype=object) for column in columns})
    else:
        frame = pd.DataFrame.from_records(list(found), columns=columns).astype(object)
    # a property missing from an edge (a corrupted load) becomes -1 or NaN: a checksum that
    # differs, and a violation, rather than an error
    for column in ("support", "rank"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).fillna(-1).astype("int64")
    for column in ("weight", "score"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
    return frame


@dataclass(frozen=True)
class RecommendationGate:
    """Whether the generation may be switched to, both sides' digests, and what differed."""

    passed: bool
    failures: list[str]
    computed: dict[str, Digest]
    loaded: dict[str, Digest]
    differences: list[str]


def violations(
    loaded: LoadedGeneration, tenant: str, catalog: Iterable[str]
) -> dict[str, list[Any]]:
    """Per rule, the loaded edges that break it (as (source, target) pairs)."""
    known = set(catalog)
    bought, similar = loaded.bought, loaded.similar
    edges = pd.DataFrame(
        {
            "source": pd.concat([bought["source"], similar["source"]], ignore_index=True),
            "target": pd.concat([bought["target"], similar["target"]], ignore_index=True),
            "weight": pd.concat([bought["weight"], similar["score"]], ignore_index=True),
            "tenant": pd.concat(
                [bought["target_tenant"], similar["target_tenant"]], ignore_index=True
            ),
        }
    )
    reverse = bought.rename(columns={"source": "target", "target": "source"})
    matched = bought.merge(
        reverse[["source", "target", "support", "weight"]],
        on=["source", "target", "support", "weight"],
        how="left",
        indicator=True,
    )

    def pairs(frame: pd.DataFrame) -> list[Any]:
        return list(zip(frame["source"], frame["target"], strict=True))

    weight = edges["weight"].astype(float)
    return {
        "self_edges": pairs(edges[edges["source"] == edges["target"]]),
        "outside_catalog": pairs(
            edges[~(edges["source"].isin(known) & edges["target"].isin(known))
                  | (edges["tenant"] != tenant)]
        ),
        "asymmetric": pairs(matched[matched["_merge"] == "left_only"]),
        "out_of_range": pairs(edges[~((weight > 0) & (weight <= 1))]),
        "unsupported": pairs(bought[~(bought["support"].astype(float) >= 1)]),
    }  # fmt: skip


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


def check_recommendation_gate(
    computed: ComputedGeneration, loaded: LoadedGeneration
) -> RecommendationGate:
    """Validate the loaded generation against the computed one; an expectation that errors is a
    bug, so raises."""
    computed_digests = {
        "bought": computed.bought_digest,
        "similar": computed.similar_digest,
        "seeds": computed.seeds_digest,
    }
    loaded_digests = {
        "bought": digest(loaded.bought, BOUGHT_DIGEST),
        "similar": digest(loaded.similar, SIMILAR_DIGEST),
        "seeds": digest(loaded.seeds, SEEDS_DIGEST),
    }
    broken = violations(loaded, computed.tenant, computed.catalog)
    facts: dict[str, Any] = {rule: len(edges) for rule, edges in broken.items()}
    for side, digests in (("computed", computed_digests), ("loaded", loaded_digests)):
        for kind, found in digests.items():
            facts[f"{side}_{kind}_count"] = found.count
            facts[f"{side}_{kind}_checksum"] = found.checksum
    failures = []
    for outcome in RECOMMENDATION_GATE.outcomes(pd.DataFrame([facts])):
        if outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {outcome.expectation_config.type} failed to run: "
                f"{outcome.exception_info.get('exception_message')}"
            )
        if not outcome.success:
            meta = outcome.expectation_config.meta
            rule = meta.get("facts")
            examples = f" ({facts[rule]} edges, e.g. {broken[rule][:5]})" if rule else ""
            failures.append(meta["reason"] + examples)
    return RecommendationGate(
        passed=not failures,
        failures=failures,
        computed=computed_digests,
        loaded=loaded_digests,
        differences=differences(computed, loaded) if failures else [],
    )
