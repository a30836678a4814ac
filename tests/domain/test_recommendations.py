"""The recommendation rules, on small inputs whose answers are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from pydantic import ValidationError

from domain.recommendations import (
    BOUGHT,
    FOR_YOU,
    SIMILAR,
    RebuildParameters,
    catalog_lines,
    co_purchase,
    compute_generation,
    digest,
    features,
    for_you,
    generation_id,
    graph_bought_together,
    lines_frame,
    seeds,
    similarity,
)

LINES = [
    ("o1", "ann", "A"),
    ("o1", "ann", "B"),
    ("o2", "bo", "A"),
    ("o2", "bo", "B"),
    ("o2", "bo", "C"),
    ("o3", "cy", "A"),
    ("o3", "cy", "C"),
    ("o3", "cy", "GONE"),
    ("o4", "dee", "D"),
]
CATALOG = [
    {"sku": "A", "category": "kitchen/kettles", "tags": ["red"], "attributes": {"volume": 1.5}},
    {"sku": "B", "category": "kitchen/kettles", "tags": ["steel"], "attributes": {"volume": 1.5}},
    {"sku": "C", "category": "kitchen/teapots", "tags": ["red"]},
    {"sku": "D", "category": "garden", "tags": []},
]


def pairs_of(frame) -> dict[tuple[str, str], tuple[int, float, float, float]]:
    return {
        (r.source, r.target): (r.support, r.confidence, r.lift, r.weight)
        for r in frame.itertuples()
    }


def test_co_purchase_support_confidence_lift_and_weight() -> None:
    known = catalog_lines(lines_frame(LINES), {"A", "B", "C", "D"})
    assert pairs_of(co_purchase(known)) == {
        ("A", "B"): (2, 0.666667, 1.333333, 0.816497),
        ("B", "A"): (2, 1.0, 1.333333, 0.816497),
        ("A", "C"): (2, 0.666667, 1.333333, 0.816497),
        ("C", "A"): (2, 1.0, 1.333333, 0.816497),
        ("B", "C"): (1, 0.5, 1.0, 0.5),
        ("C", "B"): (1, 0.5, 1.0, 0.5),
    }


def test_min_support_drops_rare_pairs_and_unknown_skus_never_count() -> None:
    known = catalog_lines(lines_frame(LINES), {"A", "B", "C", "D"})
    assert "GONE" not in set(known["sku"])
    assert set(pairs_of(co_purchase(known, min_support=2))) == {
        ("A", "B"), ("B", "A"), ("A", "C"), ("C", "A"),
    }  # fmt: skip


def test_graph_keeps_each_top_n_and_its_reverse() -> None:
    known = catalog_lines(lines_frame(LINES), {"A", "B", "C", "D"})
    edges = graph_bought_together(co_purchase(known), top_n=1)
    # A's top is B (tie on weight and support, B sorts first); B's and C's top is A;
    # A->C is there only as the reverse of C->A: rank 0, in nobody's list
    assert dict(
        zip(zip(edges["source"], edges["target"], strict=True), edges["rank"], strict=True)
    ) == {("A", "B"): 1, ("B", "A"): 1, ("C", "A"): 1, ("A", "C"): 0}
    lines = compute_generation("acme", lines_frame(LINES), CATALOG, top_n=1).lists[BOUGHT]
    assert lines["A"] == [("B", 0.816497)] and lines["C"] == [("A", 0.816497)]


def test_features_weigh_deeper_category_levels_more() -> None:
    assert features(CATALOG[0]) == {
        "c:kitchen": 1.0,
        "c:kitchen/kettles": 2.0,
        "t:red": 1.0,
        "a:volume=1.5": 0.5,
    }


def test_weighted_jaccard_similarity_top_n() -> None:
    edges = similarity(CATALOG, top_n=2)
    scores = {(r.source, r.target): r.score for r in edges.itertuples()}
    # A,B share kitchen (1) + kettles (2) + volume (0.5) = 3.5 of 4.5 + 4.5 - 3.5 = 5.5
    assert scores[("A", "B")] == pytest.approx(0.636364)
    # A,C share kitchen (1) + red (1) = 2 of 4.5 + 4 - 2 = 6.5
    assert scores[("A", "C")] == pytest.approx(0.307692)
    # B,C share kitchen only: 1 of 4.5 + 4 - 1
    assert scores[("C", "B")] == pytest.approx(0.133333)
    assert not any("D" in pair for pair in scores)  # nothing shared with garden
    assert scores.keys() == {("A", "B"), ("A", "C"), ("B", "A"), ("B", "C"), ("C", "A"),
                             ("C", "B")}  # fmt: skip


def test_for_you_sums_both_edge_kinds_and_never_recommends_what_was_bought() -> None:
    known = catalog_lines(lines_frame(LINES), {"A", "B", "C", "D"})
    bought = graph_bought_together(co_purchase(known), top_n=10)
    similar = similarity(CATALOG, top_n=10)
    lists = for_you(seeds(known), bought, similar, top_n=10)
    # ann bought A, B: C is reached from A (0.816497 + 0.307692) and B (0.5 + 0.133333)
    assert lists["ann"] == [("C", 1.757522)]
    assert lists["bo"] == []  # bought everything related
    assert lists["dee"] == []  # D is related to nothing
    assert [sku for sku, _ in lists["cy"]] == ["B"]


def test_generation_is_deterministic_and_its_checksum_follows_the_content() -> None:
    first = compute_generation("acme", lines_frame(LINES), CATALOG, top_n=10)
    again = compute_generation("acme", lines_frame(list(reversed(LINES))), CATALOG[::-1], 10)
    assert first.checksum == again.checksum
    assert first.lists == again.lists
    assert first.pairs == 3 and first.orders == 4 and first.customers == 4
    assert first.lists[BOUGHT]["A"] == [("B", 0.816497), ("C", 0.816497)]
    assert first.lists[SIMILAR]["D"] == []
    assert set(first.lists[FOR_YOU]) == {"ann", "bo", "cy", "dee"}
    fewer = compute_generation("acme", lines_frame(LINES[:-1]), CATALOG, top_n=10)
    assert fewer.checksum != first.checksum


def test_no_orders_is_an_empty_co_purchase_generation() -> None:
    empty = compute_generation("acme", lines_frame([]), CATALOG, top_n=5)
    assert empty.pairs == 0 and empty.bought.empty and empty.customers == 0
    assert empty.bought_digest.count == 0
    assert not empty.similar.empty


def test_nothing_at_all_is_empty_everywhere() -> None:
    empty = compute_generation("acme", lines_frame([]), [], top_n=5)
    assert empty.bought.empty and empty.similar.empty and empty.lists[BOUGHT] == {}


def test_digest_is_order_independent_and_counts_repeats() -> None:
    rows = pd.DataFrame({"source": ["A", "B"], "target": ["B", "A"], "score": [0.5, 0.5]})
    columns = ["source", "target", "score"]
    assert digest(rows, columns) == digest(rows.iloc[::-1], columns)
    assert digest(pd.concat([rows, rows.iloc[:1]]), columns).count == 3
    assert digest(pd.concat([rows, rows.iloc[:1]]), columns) != digest(rows, columns)
    changed = rows.assign(score=[0.5, 0.500001])
    assert digest(changed, columns) != digest(rows, columns)


@pytest.mark.parametrize(
    "bad",
    [
        {"lookback_days": 0},
        {"lookback_days": -3},
        {"top_n": 0},
        {"top_n": 101},
        {"min_support": 0},
        {"tenant": "Not A Tenant"},
        {"keep": 0},
        {"surprise": 1},
    ],
)
def test_parameters_refuse_what_makes_no_sense(bad: dict) -> None:
    with pytest.raises(ValidationError):
        RebuildParameters(**bad)


def test_parameter_defaults() -> None:
    parameters = RebuildParameters()
    assert (parameters.tenant, parameters.lookback_days, parameters.top_n) == (None, 180, 10)
    assert parameters.min_support == 1 and parameters.dry_run is False


def test_generation_ids_sort_by_time() -> None:
    early = generation_id(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "ffff")
    late = generation_id(datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC), "0000")
    assert early < late and early == "20260102T030405000006Z-ffff"
