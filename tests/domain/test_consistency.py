"""The consistency rules without a store: buckets, checksums, drift."""

from __future__ import annotations

import random

from domain.consistency import (
    BUCKETS,
    Digest,
    Drift,
    PairResult,
    Side,
    bucket_of,
    classify,
    differing_buckets,
    in_buckets,
    record_hash,
    signature,
)

RECORDS = [(f"order-{n}", signature(n % 3 + 1, "placed")) for n in range(2000)]


def test_bucket_is_stable_and_in_range() -> None:
    assert bucket_of("order-1") == bucket_of("order-1")
    assert {bucket_of(rid) for rid, _ in RECORDS} <= set(range(BUCKETS))
    assert len({bucket_of(rid) for rid, _ in RECORDS}) > BUCKETS // 2
    # the values PostgreSQL computes in SQL for the same inputs (md5-based, not Python's hash)
    assert bucket_of("abc-1") == 493
    assert record_hash("abc-1", "1\x1eplaced") == 636006713126931778


def test_checksum_ignores_order_and_sees_duplicates_and_changes() -> None:
    shuffled = RECORDS[:]
    random.Random(7).shuffle(shuffled)  # noqa: S311 - an order, not a secret
    assert Digest.of(RECORDS) == Digest.of(shuffled)
    assert Digest.of(RECORDS).records == 2000

    doubled = Digest.of([*RECORDS, RECORDS[5]])
    assert differing_buckets(Digest.of(RECORDS), doubled) == [bucket_of(RECORDS[5][0])]

    changed = [*RECORDS[:10], (RECORDS[10][0], signature(9, "cancelled")), *RECORDS[11:]]
    assert differing_buckets(Digest.of(RECORDS), Digest.of(changed)) == [bucket_of(RECORDS[10][0])]


def test_digest_from_aggregate_rows_matches_a_streamed_one() -> None:
    streamed = Digest.of(RECORDS)
    rows = [(bucket, count, total) for bucket, (count, total) in streamed.buckets.items()]
    assert Digest.from_rows(rows) == streamed


def test_signature_spells_none_as_empty_like_sql() -> None:
    assert signature(3, "a@b", None) == "3\x1ea@b\x1e"


def test_classify_missing_extra_stale_and_in_flight() -> None:
    source = {"a": "1", "b": "2", "c": "3", "d": "4"}
    derived = {"a": "1", "b": "1", "x": "9", "d": "3"}
    drift = classify(source, derived, in_flight=lambda rid: rid == "d")
    assert drift == Drift(missing=["c"], extra=["x"], stale=["b"], in_flight=1)
    assert drift.total == 3
    assert drift.ids == ["b", "c", "x"]


def test_a_cache_miss_is_not_drift() -> None:
    drift = classify({"a": "1", "b": "2"}, {"b": "1", "z": "0"}, missing_is_drift=False)
    assert drift == Drift(missing=[], extra=["z"], stale=["b"])


def test_streamed_side_reads_only_the_buckets_asked_for() -> None:
    side = Side.streamed("redis", lambda tenant: iter(RECORDS))
    wanted = {bucket_of("order-7")}
    assert "order-7" in side.records("t", wanted)
    assert all(bucket_of(rid) in wanted for rid in side.records("t", wanted))
    assert side.digest("t") == Digest.of(RECORDS)
    assert in_buckets(RECORDS, []) == {}


def test_result_row_reports_what_remains_after_repair() -> None:
    found = Drift(missing=["a"], stale=["b"])
    result = PairResult("orders-redis", "postgres", "redis", 10, 9, [1, 2], found, repaired=2)
    assert result.final is found
    repaired = PairResult(
        "orders-redis", "postgres", "redis", 10, 9, [1, 2], found, repaired=2, remaining=Drift()
    )
    assert repaired.final.total == 0
    row = repaired.row()
    assert (row["missing"], row["stale"], row["remaining"], row["sample ids"]) == (1, 1, 0, "a, b")
