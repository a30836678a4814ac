"""Recommendations: every rule that decides what a tenant's shoppers are recommended.

Plain computation over frames, no store and no Prefect: the flow hands in the order lines it read
from PostgreSQL and the catalog it read from MongoDB, and persists what these functions decided.

Rules, once:
- only products in the catalog count: a line for a sku the catalog does not hold (never had, or
  deleted) is dropped before anything is counted, so such a product gets no recommendations and
  is nobody's recommendation; cancelled orders never reach these functions (the read excludes
  them);
- co-purchase, per unordered pair of products bought in the same order: support (orders holding
  both), confidence a->b (support / orders holding a), lift (support * orders / (orders holding a
  * orders holding b)) and a symmetric weight, the cosine support / sqrt(orders a * orders b),
  in (0, 1]. Pairs below the minimum support are not pairs;
- a product's "bought together" list is its partners by weight, then support, descending, then
  sku; the graph keeps each product's top N and the reverse of each kept edge, so the edges are
  symmetric and every product's top N is in the graph;
- similarity is a weighted Jaccard over catalog features: each level of the category path
  (deeper levels weigh more), each tag, each attribute (key, value). Score = weight of the shared
  features / weight of all features of either product; the graph keeps each product's top N by
  score, then sku;
- "for you" for a customer: the seeds are what they bought in the window; every edge from a seed
  in the generation (bought together or similar) adds its weight to its target, seeds are never
  recommended, and the top N by summed weight, then sku, is the list. Weights are summed as
  integer millionths, so the Cypher reading of the same generation gets the same sums;
- weights and scores are rounded to 6 decimals: the checksum of a generation depends only on
  its inputs, and a re-run with unchanged inputs has the same checksum.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse

from domain.tenancy import TenantId

DEFAULT_LOOKBACK_DAYS = 180
MAX_LOOKBACK_DAYS = 3650
DEFAULT_TOP_N = 10
MAX_TOP_N = 100
DEFAULT_KEEP = 2
DECIMALS = 6
MICROS = 10**DECIMALS
CATEGORY_WEIGHT = 1.0
"""Weight of the first level of a category path; level k weighs k times as much."""
TAG_WEIGHT = 1.0
ATTRIBUTE_WEIGHT = 0.5
SIMILARITY_BLOCK = 2048
"""Products whose similarities are computed at once: bounds the memory of one sparse product."""
CHECKSUM_MODULUS = 2**256

BOUGHT = "bought"
SIMILAR = "similar"
FOR_YOU = "for-you"

BOUGHT_COLUMNS = ["source", "target", "support", "confidence", "lift", "weight"]
SIMILAR_COLUMNS = ["source", "target", "score"]
SEED_COLUMNS = ["customer_id", "skus"]
LINE_COLUMNS = ["order_id", "customer_id", "sku"]


class RebuildParameters(BaseModel):
    """What a `rebuild-recommendations` run is asked to do; the Prefect UI renders it as a form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: TenantId | None = Field(
        None, description="one tenant; leave empty to rebuild every tenant that has a catalog"
    )
    lookback_days: int = Field(
        DEFAULT_LOOKBACK_DAYS,
        gt=0,
        le=MAX_LOOKBACK_DAYS,
        description=f"orders placed in the last N days count, 1 to {MAX_LOOKBACK_DAYS}",
    )
    top_n: int = Field(
        DEFAULT_TOP_N, ge=1, le=MAX_TOP_N, description=f"products per list, 1 to {MAX_TOP_N}"
    )
    min_support: int = Field(
        1, ge=1, le=1_000_000, description="orders a pair must share to count as bought together"
    )
    keep: int = Field(
        DEFAULT_KEEP, ge=1, le=10, description="generations kept in Neo4j, the new one included"
    )
    dry_run: bool = Field(False, description="compute and report, write nothing")


def window_start(now: datetime, lookback_days: int) -> datetime:
    """The first instant whose orders count."""
    return now - timedelta(days=lookback_days)


def generation_id(now: datetime, token: str) -> str:
    """A generation's id: sortable by time, unique by a random token (two runs, same instant)."""
    return f"{now:%Y%m%dT%H%M%S%f}Z-{token}"


# --- inputs ------------------------------------------------------------------------------------


def lines_frame(rows: Iterable[Sequence[str]]) -> pd.DataFrame:
    """Order lines (order_id, customer_id, sku) as a frame."""
    return pd.DataFrame.from_records(list(rows), columns=LINE_COLUMNS).astype(object)


def catalog_lines(lines: pd.DataFrame, catalog: Iterable[str]) -> pd.DataFrame:
    """The lines whose sku is in the catalog, one per (order, sku)."""
    known = lines[lines["sku"].isin(set(catalog))]
    return known.drop_duplicates(["order_id", "sku"]).reset_index(drop=True)


def features(product: Mapping[str, Any]) -> dict[str, float]:
    """A catalog product's similarity features and their weights."""
    found: dict[str, float] = {}
    category = product.get("category")
    if category:
        levels = [level for level in str(category).split("/") if level]
        for depth in range(1, len(levels) + 1):
            found["c:" + "/".join(levels[:depth]).lower()] = CATEGORY_WEIGHT * depth
    for tag in product.get("tags") or []:
        found["t:" + str(tag).lower()] = TAG_WEIGHT
    for name, value in sorted((product.get("attributes") or {}).items()):
        spelt = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        found[f"a:{name.lower()}={spelt.lower()}"] = ATTRIBUTE_WEIGHT
    return found


# --- co-purchase -------------------------------------------------------------------------------


def _round(values: np.ndarray) -> np.ndarray:
    return np.round(values.astype(np.float64), DECIMALS)


def co_purchase(lines: pd.DataFrame, min_support: int = 1) -> pd.DataFrame:
    """Support, confidence, lift and weight of every ordered pair (a, b), a != b, bought together
    in at least `min_support` orders; both directions of each pair, sorted by source, target.

    `lines` are catalog lines (`catalog_lines`). One sparse product of the order x product
    matrix with itself counts every pair at once.
    """
    if lines.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in BOUGHT_COLUMNS})
    order_codes, _ = pd.factorize(lines["order_id"])
    skus = np.array(sorted(set(lines["sku"])), dtype=object)
    sku_codes = np.searchsorted(skus, lines["sku"].to_numpy(dtype=object))
    baskets = sparse.csr_matrix(
        (np.ones(len(lines), dtype=np.int64), (order_codes, sku_codes)),
        shape=(order_codes.max() + 1, len(skus)),
    )
    together = (baskets.T @ baskets).tocoo()
    orders = baskets.shape[0]
    per_product = np.asarray(baskets.sum(axis=0)).ravel()
    keep = (together.row != together.col) & (together.data >= min_support)
    a, b, support = together.row[keep], together.col[keep], together.data[keep]
    order = np.lexsort((b, a))
    a, b, support = a[order], b[order], support[order]
    count_a, count_b = per_product[a].astype(np.float64), per_product[b].astype(np.float64)
    weight = np.maximum(_round(support / np.sqrt(count_a * count_b)), 1 / MICROS)
    return pd.DataFrame(
        {
            "source": skus[a],
            "target": skus[b],
            "support": support.astype(np.int64),
            "confidence": _round(support / count_a),
            "lift": _round(support * orders / (count_a * count_b)),
            "weight": weight,
        }
    )


def _top_per_source(edges: pd.DataFrame, by: list[str], ascending: list[bool], n: int) -> Any:
    ranked = edges.sort_values(["source", *by, "target"], ascending=[True, *ascending, True])
    return ranked.groupby("source", sort=False).head(n)


def graph_bought_together(pairs: pd.DataFrame, top_n: int) -> pd.DataFrame:
    """The co-purchase edges the graph holds: each product's top N and the reverse of each."""
    if pairs.empty:
        return pairs.reset_index(drop=True)
    top = _top_per_source(pairs, ["weight", "support"], [False, False], top_n)
    keys = set(zip(top["source"], top["target"], strict=True))
    keys |= {(target, source) for source, target in keys}
    chosen = [key in keys for key in zip(pairs["source"], pairs["target"], strict=True)]
    return pairs[chosen].sort_values(["source", "target"]).reset_index(drop=True)


def bought_together_lists(edges: pd.DataFrame, top_n: int) -> dict[str, list[tuple[str, float]]]:
    """Each source's top N partners from the graph's edges, as (sku, weight)."""
    if edges.empty:
        return {}
    top = _top_per_source(edges, ["weight", "support"], [False, False], top_n)
    return _lists(top, "weight")


def _lists(top: pd.DataFrame, value: str) -> dict[str, list[tuple[str, float]]]:
    found: dict[str, list[tuple[str, float]]] = {}
    for source, target, score in zip(top["source"], top["target"], top[value], strict=True):
        found.setdefault(source, []).append((target, float(score)))
    return found


# --- similarity --------------------------------------------------------------------------------


def similarity(products: Sequence[Mapping[str, Any]], top_n: int) -> pd.DataFrame:
    """Each catalog product's top N most similar products (weighted Jaccard > 0), by score
    descending then sku: columns source, target, score; sorted by source, target."""
    catalog = sorted({product["sku"]: product for product in products}.items())
    skus = np.array([sku for sku, _ in catalog], dtype=object)
    vocabulary: dict[str, int] = {}
    rows, columns, weights = [], [], []
    for row, (_, product) in enumerate(catalog):
        for name, weight in features(product).items():
            rows.append(row)
            columns.append(vocabulary.setdefault(name, len(vocabulary)))
            weights.append(weight)
    if not vocabulary:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in SIMILAR_COLUMNS})
    shape = (len(skus), len(vocabulary))
    weighted = sparse.csr_matrix((np.array(weights), (rows, columns)), shape=shape)
    present = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=shape)
    totals = np.asarray(weighted.sum(axis=1)).ravel()
    sources, targets, scores = [], [], []
    for start in range(0, len(skus), SIMILARITY_BLOCK):
        shared = (weighted[start : start + SIMILARITY_BLOCK] @ present.T).tocoo()
        a = shared.row + start
        b = shared.col
        keep = a != b
        a, b, inter = a[keep], b[keep], shared.data[keep]
        score = _round(inter / (totals[a] + totals[b] - inter))
        order = np.lexsort((b, -score, a))
        a, b, score = a[order], b[order], score[order]
        first = np.r_[0, np.flatnonzero(np.diff(a)) + 1]
        rank = np.arange(len(a)) - np.repeat(first, np.diff(np.r_[first, len(a)]))
        top = rank < top_n
        sources.append(a[top])
        targets.append(b[top])
        scores.append(score[top])
    a, b, score = np.concatenate(sources), np.concatenate(targets), np.concatenate(scores)
    order = np.lexsort((b, a))
    return pd.DataFrame({"source": skus[a[order]], "target": skus[b[order]], "score": score[order]})


def similar_lists(edges: pd.DataFrame, top_n: int) -> dict[str, list[tuple[str, float]]]:
    if edges.empty:
        return {}
    return _lists(_top_per_source(edges, ["score"], [False], top_n), "score")


# --- for you -----------------------------------------------------------------------------------


def micros(values: pd.Series) -> pd.Series:
    """Weights as integer millionths: sums that do not depend on the order they are added in."""
    return np.round(values.astype(np.float64) * MICROS).astype(np.int64)


def seeds(lines: pd.DataFrame) -> pd.DataFrame:
    """Per customer, the sorted skus they bought: columns customer_id, skus (a tuple)."""
    if lines.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in SEED_COLUMNS})
    pairs = lines[["customer_id", "sku"]].drop_duplicates().sort_values(["customer_id", "sku"])
    grouped = pairs.groupby("customer_id", sort=True)["sku"].agg(tuple)
    return pd.DataFrame({"customer_id": grouped.index.astype(object), "skus": grouped.to_numpy()})


def for_you(
    customer_seeds: pd.DataFrame, bought: pd.DataFrame, similar: pd.DataFrame, top_n: int
) -> dict[str, list[tuple[str, float]]]:
    """Every seeded customer's top N: the summed weights of the edges leaving their seeds,
    seeds excluded. A customer with seeds but no candidate gets an empty list."""
    result: dict[str, list[tuple[str, float]]] = {c: [] for c in customer_seeds["customer_id"]}
    if customer_seeds.empty:
        return result
    edges = pd.concat(
        [
            pd.DataFrame({"source": bought["source"], "target": bought["target"],
                          "micros": micros(bought["weight"])}),
            pd.DataFrame({"source": similar["source"], "target": similar["target"],
                          "micros": micros(similar["score"])}),
        ]
    )  # fmt: skip
    if edges.empty:
        return result
    owned = customer_seeds.explode("skus").rename(columns={"skus": "sku"})
    reached = owned.merge(edges, left_on="sku", right_on="source")[
        ["customer_id", "target", "micros"]
    ]
    bought_already = reached.merge(
        owned, left_on=["customer_id", "target"], right_on=["customer_id", "sku"], how="left"
    )["sku"].notna()
    reached = reached[~bought_already.to_numpy()]
    scored = reached.groupby(["customer_id", "target"], as_index=False)["micros"].sum()
    scored = scored.sort_values(["customer_id", "micros", "target"], ascending=[True, False, True])
    top = scored.groupby("customer_id", sort=False).head(top_n)
    ranked = zip(top["customer_id"], top["target"], top["micros"], strict=True)
    for customer, target, score in ranked:
        result[customer].append((target, int(score) / MICROS))
    return result


# --- the generation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """How many rows one side holds, and an order-independent checksum of them: the sum modulo
    2**256 of each row's SHA-256 (a sum, unlike a XOR, notices a row that is there twice)."""

    count: int
    checksum: str


def digest(rows: Iterable[Sequence[Any]]) -> Digest:
    count = 0
    total = 0
    for row in rows:
        spelt = json.dumps([_plain(value) for value in row], separators=(",", ":"))
        total = (total + int.from_bytes(sha256(spelt.encode()).digest(), "big")) % CHECKSUM_MODULUS
        count += 1
    return Digest(count=count, checksum=f"{total:064x}")


def _plain(value: Any) -> Any:
    """One spelling per value, whichever store or numpy type it came from."""
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return value


def bought_rows(edges: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    """What the gate compares of a co-purchase edge: the pair, its support and weight."""
    return zip(edges["source"], edges["target"], edges["support"], edges["weight"], strict=True)


def similar_rows(edges: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    return zip(edges["source"], edges["target"], edges["score"], strict=True)


def seed_rows(frame: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    return zip(frame["customer_id"], frame["skus"], strict=True)


@dataclass(frozen=True)
class ComputedGeneration:
    """Everything one rebuild computed for one tenant, before any store is written."""

    tenant: str
    top_n: int
    orders: int
    pairs: int
    """Unordered product pairs bought together at least `min_support` times."""
    bought: pd.DataFrame
    similar: pd.DataFrame
    seeds: pd.DataFrame
    bought_digest: Digest
    similar_digest: Digest
    seeds_digest: Digest
    catalog: frozenset[str] = field(repr=False)
    lists: dict[str, dict[str, list[tuple[str, float]]]] = field(repr=False)
    """kind -> product sku or customer id -> ranked (sku, weight): what Redis publishes."""

    @property
    def checksum(self) -> str:
        """The generation's content checksum: equal inputs, equal checksum."""
        return generation_checksum(self.bought_digest, self.similar_digest, self.seeds_digest)

    @property
    def customers(self) -> int:
        return len(self.seeds)


def generation_checksum(bought: Digest, similar: Digest, seeds: Digest) -> str:
    parts = [f"{name}:{d.count}:{d.checksum}" for name, d in
             ((BOUGHT, bought), (SIMILAR, similar), ("seeds", seeds))]  # fmt: skip
    return sha256("|".join(parts).encode()).hexdigest()


def compute_generation(
    tenant: str,
    lines: pd.DataFrame,
    products: Sequence[Mapping[str, Any]],
    top_n: int,
    min_support: int = 1,
) -> ComputedGeneration:
    """Co-purchase, similarity and "for you" of one tenant, from its order lines in the window
    and its catalog."""
    catalog = frozenset(product["sku"] for product in products)
    known = catalog_lines(lines, catalog)
    pairs = co_purchase(known, min_support)
    bought = graph_bought_together(pairs, top_n)
    similar = similarity(products, top_n)
    customer_seeds = seeds(known)
    bought_lists = bought_together_lists(bought, top_n)
    similar_by_sku = similar_lists(similar, top_n)
    lists = {
        BOUGHT: {sku: bought_lists.get(sku, []) for sku in sorted(catalog)},
        SIMILAR: {sku: similar_by_sku.get(sku, []) for sku in sorted(catalog)},
        FOR_YOU: for_you(customer_seeds, bought, similar, top_n),
    }
    return ComputedGeneration(
        tenant=tenant,
        top_n=top_n,
        orders=int(known["order_id"].nunique()),
        pairs=len(pairs) // 2,
        bought=bought,
        similar=similar,
        seeds=customer_seeds,
        bought_digest=digest(bought_rows(bought)),
        similar_digest=digest(similar_rows(similar)),
        seeds_digest=digest(seed_rows(customer_seeds)),
        catalog=catalog,
        lists=lists,
    )
