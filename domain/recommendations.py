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
SIMILARITY_BLOCK = 512
"""Products whose similarities are computed at once, as one dense block of scores against the
whole catalog: 512 x 10,000 products is 40 MB."""
CHECKSUM_MODULUS = 2**256

BOUGHT = "bought"
SIMILAR = "similar"
FOR_YOU = "for-you"

BOUGHT_COLUMNS = ["source", "target", "support", "confidence", "lift", "weight", "rank"]
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
    """The co-purchase edges the graph holds: each product's top N, ranked 1..N, and the reverse
    of each (rank 0 when the reverse is not in its own source's top N). Sorted by source, target.
    """
    if pairs.empty:
        return pairs.assign(rank=pd.Series(dtype="int64")).reset_index(drop=True)
    ranked = pairs.sort_values(
        ["source", "weight", "support", "target"], ascending=[True, False, False, True]
    )
    ranked = ranked.assign(rank=ranked.groupby("source", sort=False).cumcount() + 1)
    top = ranked[ranked["rank"] <= top_n]
    kept = top[["source", "target"]]
    kept = pd.concat([kept, kept.rename(columns={"source": "target", "target": "source"})])
    chosen = ranked.merge(kept.drop_duplicates(), on=["source", "target"])
    chosen["rank"] = chosen["rank"].where(chosen["rank"] <= top_n, 0).astype("int64")
    return chosen.sort_values(["source", "target"]).reset_index(drop=True)


def bought_together_lists(edges: pd.DataFrame, top_n: int) -> dict[str, list[tuple[str, float]]]:
    """Each source's top N partners from the graph's edges, as (sku, weight), in rank order."""
    if edges.empty:
        return {}
    top = edges[(edges["rank"] > 0) & (edges["rank"] <= top_n)].sort_values(["source", "rank"])
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
    n = len(skus)
    k = min(top_n, n - 1)
    for start in range(0, n if k > 0 else 0, SIMILARITY_BLOCK):
        inter = (weighted[start : start + SIMILARITY_BLOCK] @ present.T).toarray()
        rows = np.arange(start, start + len(inter))
        union = totals[rows][:, None] + totals[None, :] - inter
        score = _round(np.divide(inter, union, out=np.zeros_like(inter), where=union > 0))
        score[np.arange(len(inter)), rows] = 0  # never similar to itself
        # the k-th best score of each row; every entry at least that good (ties included) is a
        # candidate, and candidates are ranked exactly: score descending, then sku
        kth = np.partition(score, n - k, axis=1)[:, n - k]
        a, b = np.nonzero((score >= kth[:, None]) & (score > 0))
        value = score[a, b]
        order = np.lexsort((b, -value, a))
        a, b, value = a[order], b[order], value[order]
        first = np.r_[0, np.flatnonzero(np.diff(a)) + 1] if len(a) else np.array([], dtype=int)
        rank = np.arange(len(a)) - np.repeat(first, np.diff(np.r_[first, len(a)]))
        top = rank < k
        sources.append(a[top] + start)
        targets.append(b[top])
        scores.append(value[top])
    if not sources:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in SIMILAR_COLUMNS})
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
    """Every seeded customer's top N: the summed weights of the listed edges leaving their seeds
    (each seed's top-N bought together, rank > 0, and its similar products), seeds excluded.
    One sparse product customers x seeds x products, in integer millionths. A customer with
    seeds but no candidate gets an empty list."""
    result: dict[str, list[tuple[str, float]]] = {c: [] for c in customer_seeds["customer_id"]}
    listed = bought[bought["rank"] > 0] if "rank" in bought else bought
    sources = np.concatenate(
        [listed["source"].to_numpy(object), similar["source"].to_numpy(object)]
    )
    targets = np.concatenate(
        [listed["target"].to_numpy(object), similar["target"].to_numpy(object)]
    )
    weights = np.concatenate([micros(listed["weight"]), micros(similar["score"])])
    if customer_seeds.empty or len(sources) == 0:
        return result
    owned = customer_seeds.explode("skus")
    owned_skus = owned["skus"].to_numpy(object)
    skus = np.unique(np.concatenate([sources, targets, owned_skus]).astype(str))
    customers = customer_seeds["customer_id"].to_numpy(object)
    customer_codes = np.searchsorted(customers, owned["customer_id"].to_numpy(object))
    shape = (len(customers), len(skus))
    seeded = sparse.csr_matrix(
        (np.ones(len(owned), dtype=np.int64),
         (customer_codes, np.searchsorted(skus, owned_skus.astype(str)))), shape=shape
    )  # fmt: skip
    edges = sparse.csr_matrix(
        (weights.astype(np.int64),
         (np.searchsorted(skus, sources.astype(str)), np.searchsorted(skus, targets.astype(str)))),
        shape=(len(skus), len(skus)),
    )  # fmt: skip
    scores = (seeded @ edges).tocsr()
    scores = (scores - scores.multiply(seeded > 0)).tocoo()
    keep = scores.data > 0
    row, col, score = scores.row[keep], scores.col[keep], scores.data[keep]
    order = np.lexsort((col, -score, row))
    row, col, score = row[order], col[order], score[order]
    first = np.r_[0, np.flatnonzero(np.diff(row)) + 1] if len(row) else np.array([], dtype=int)
    rank = np.arange(len(row)) - np.repeat(first, np.diff(np.r_[first, len(row)]))
    top = rank < top_n
    for r, c, value in zip(row[top], col[top], score[top], strict=True):
        result[customers[r]].append((str(skus[c]), int(value) / MICROS))
    return result


# --- the generation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Digest:
    """How many rows one side holds, and an order-independent checksum of them: the sum modulo
    2**64 of each row's 64-bit hash (pandas' keyed SipHash; a sum, unlike a XOR, also notices a
    row that is there twice)."""

    count: int
    checksum: str


BOUGHT_DIGEST = ("source", "target", "support", "weight", "rank")
SIMILAR_DIGEST = ("source", "target", "score")
SEEDS_DIGEST = ("customer_id", "skus")


def _normalized(column: pd.Series) -> pd.Series:
    """One representation per value, whichever store or dtype it came from."""
    if pd.api.types.is_bool_dtype(column):
        return column.astype(bool)
    if pd.api.types.is_integer_dtype(column):
        return column.astype("int64")
    if pd.api.types.is_float_dtype(column):
        return column.astype("float64")
    return pd.Series(
        ["|".join(v) if isinstance(v, (tuple, list)) else str(v) for v in column], dtype=object
    )


def digest(frame: pd.DataFrame, columns: Sequence[str]) -> Digest:
    """The digest of `columns` of every row of `frame`."""
    if frame.empty:
        return Digest(count=0, checksum=f"{0:016x}")
    frame = frame.reset_index(drop=True)
    normalized = pd.DataFrame({column: _normalized(frame[column]) for column in columns})
    hashes = pd.util.hash_pandas_object(normalized, index=False).to_numpy(dtype=np.uint64)
    return Digest(count=len(frame), checksum=f"{int(hashes.sum(dtype=np.uint64)):016x}")


def bought_rows(edges: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    """What the gate compares of a co-purchase edge: pair, support, weight and rank."""
    return zip(*(edges[c] for c in BOUGHT_DIGEST), strict=True)


def similar_rows(edges: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    return zip(*(edges[c] for c in SIMILAR_DIGEST), strict=True)


def seed_rows(frame: pd.DataFrame) -> Iterable[tuple[Any, ...]]:
    return zip(frame["customer_id"], (tuple(s) for s in frame["skus"]), strict=True)


class Lists:
    """kind -> product sku or customer id -> ranked (sku, weight): what Redis publishes.

    A plain class, not a dict or dataclass, on purpose: Prefect walks dicts and dataclasses that
    tasks return, looking for futures, and 10^4 lists cost it seconds."""

    __slots__ = ("_by_kind",)

    def __init__(self, by_kind: dict[str, dict[str, list[tuple[str, float]]]]) -> None:
        self._by_kind = by_kind

    def __getitem__(self, kind: str) -> dict[str, list[tuple[str, float]]]:
        return self._by_kind[kind]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lists) and self._by_kind == other._by_kind

    __hash__ = None  # type: ignore[assignment]


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
    lists: Lists = field(repr=False)

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
    lists = Lists(
        {
            BOUGHT: {sku: bought_lists.get(sku, []) for sku in sorted(catalog)},
            SIMILAR: {sku: similar_by_sku.get(sku, []) for sku in sorted(catalog)},
            FOR_YOU: for_you(customer_seeds, bought, similar, top_n),
        }
    )
    return ComputedGeneration(
        tenant=tenant,
        top_n=top_n,
        orders=int(known["order_id"].nunique()),
        pairs=len(pairs) // 2,
        bought=bought,
        similar=similar,
        seeds=customer_seeds,
        bought_digest=digest(bought, BOUGHT_DIGEST),
        similar_digest=digest(similar, SIMILAR_DIGEST),
        seeds_digest=digest(customer_seeds, SEEDS_DIGEST),
        catalog=catalog,
        lists=lists,
    )
