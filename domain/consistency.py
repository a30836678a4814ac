"""Cross-store consistency: buckets, checksums and drift, as pure rules.

Every record of a pair is an (id, signature) pair: the natural id and a text that changes
whenever the record does (its version, or a content hash). Both sides of a pair reduce their
records to a `Digest`: per bucket (a stable hash of the id, one of `BUCKETS`), how many records
and the sum modulo 2**64 of each record's 60-bit hash. The sum is order-independent, so any side
can compute it while streaming or in an aggregate query, and unlike a XOR it notices a record
that is there twice. Only buckets whose (count, checksum) differ are compared record by record.

PostgreSQL computes the same functions in SQL (`stores.postgres.checksums`): the bucket is the
first two bytes of md5(id) modulo 1,024, the record hash the first 15 hex digits of
md5(id || US || signature).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import md5
from typing import Any

BUCKETS = 1024
MODULUS = 2**64
SEPARATOR = "\x1f"
"""Between id and signature in a record's hash (ASCII unit separator: in neither)."""
FIELD_SEPARATOR = "\x1e"
"""Between the values of a signature (ASCII record separator), `concat_ws(chr(30), ...)` in SQL."""
SAMPLE = 10


def bucket_of(record_id: str) -> int:
    """The record's bucket: the first two bytes of md5(id), modulo `BUCKETS`."""
    digest = md5(record_id.encode(), usedforsecurity=False).digest()
    return (digest[0] * 256 + digest[1]) % BUCKETS


def record_hash(record_id: str, signature: str) -> int:
    """60 bits of md5(id US signature): what a bucket's checksum sums."""
    text = f"{record_id}{SEPARATOR}{signature}".encode()
    return int(md5(text, usedforsecurity=False).hexdigest()[:15], 16)


def signature(*values: Any) -> str:
    """One spelling of a record's compared values, the same from any store (and from SQL's
    `concat_ws(chr(30), ...)` over text, with NULL as '')."""
    return FIELD_SEPARATOR.join("" if value is None else str(value) for value in values)


@dataclass
class Digest:
    """Per bucket: (records, checksum). Buckets without records are absent."""

    buckets: dict[int, tuple[int, int]] = field(default_factory=dict)

    def add(self, record_id: str, sig: str) -> None:
        bucket = bucket_of(record_id)
        count, total = self.buckets.get(bucket, (0, 0))
        self.buckets[bucket] = (count + 1, (total + record_hash(record_id, sig)) % MODULUS)

    @property
    def records(self) -> int:
        return sum(count for count, _ in self.buckets.values())

    @classmethod
    def of(cls, records: Iterable[tuple[str, str]]) -> Digest:
        """Fold (id, signature) records, streamed in any order: one record in memory at a time."""
        digest = cls()
        for record_id, sig in records:
            digest.add(record_id, sig)
        return digest

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[int, int, int]]) -> Digest:
        """From (bucket, count, sum of record hashes) rows an aggregate query returned."""
        return cls({int(b): (int(n), int(total) % MODULUS) for b, n, total in rows})


def unaccounted_buckets(
    derived: Digest, found: Mapping[str, str], buckets: Collection[int]
) -> list[int]:
    """The buckets where the records `found` by id are fewer than the derived side's count:
    only there can a record be extra."""
    counts: dict[int, int] = {}
    for record_id in found:
        counts[bucket_of(record_id)] = counts.get(bucket_of(record_id), 0) + 1
    return sorted(b for b in buckets if derived.buckets.get(b, (0, 0))[0] != counts.get(b, 0))


def differing_buckets(source: Digest, derived: Digest) -> list[int]:
    """The buckets whose count or checksum differs between the two sides, sorted."""
    buckets = set(source.buckets) | set(derived.buckets)
    return sorted(b for b in buckets if source.buckets.get(b) != derived.buckets.get(b))


def in_buckets(records: Iterable[tuple[str, str]], buckets: Collection[int]) -> dict[str, str]:
    """The records of a stream that fall into `buckets`: a bounded record-level read."""
    wanted = set(buckets)
    return {rid: sig for rid, sig in records if bucket_of(rid) in wanted}


@dataclass(frozen=True)
class Drift:
    """What one pair's record-level compare found, ids sorted."""

    missing: list[str] = field(default_factory=list)
    """In the source of truth, not in the derived store."""
    extra: list[str] = field(default_factory=list)
    """In the derived store, not in the source of truth."""
    stale: list[str] = field(default_factory=list)
    """In both, with a different signature (version or content)."""
    in_flight: int = 0
    """Differences not counted: records with pending outbox events or fresh catalog writes."""

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.stale)

    @property
    def ids(self) -> list[str]:
        return sorted({*self.missing, *self.extra, *self.stale})


def classify(
    source: Mapping[str, str],
    derived: Mapping[str, str],
    in_flight: Callable[[str], bool] = lambda _: False,
    missing_is_drift: bool = True,
) -> Drift:
    """Missing / extra / stale between the records of the same buckets on both sides; records
    `in_flight` says are on their way are not drift. `missing_is_drift=False` is for a cache,
    where an expired entry is expected."""
    missing, extra, stale, skipped = [], [], [], 0
    for record_id in sorted(set(source) | set(derived)):
        here, there = source.get(record_id), derived.get(record_id)
        if here == there:
            continue
        if in_flight(record_id):
            skipped += 1
        elif there is None:
            if missing_is_drift:
                missing.append(record_id)
        elif here is None:
            extra.append(record_id)
        else:
            stale.append(record_id)
    return Drift(missing, extra, stale, skipped)


@dataclass(frozen=True)
class Side:
    """One store's view of a pair: a digest of every record, and the records of some buckets.

    A store that aggregates gives both from queries; one that cannot streams (id, signature)
    records and `Side.streamed` folds them."""

    store: str
    digest: Callable[[str], Digest]
    records: Callable[[str, Collection[int]], dict[str, str]]
    lookup: Callable[[str, Collection[str]], dict[str, str]] | None = None
    """Point reads by id, for a streamed side: the records of the ids the source has in the
    differing buckets. Where they account for the bucket's whole count there is nothing extra
    to find, and the store need not be streamed a second time."""

    @classmethod
    def streamed(
        cls,
        store: str,
        stream: Callable[[str], Iterable[tuple[str, str]]],
        lookup: Callable[[str, Collection[str]], dict[str, str]] | None = None,
    ) -> Side:
        return cls(
            store,
            lambda tenant: Digest.of(stream(tenant)),
            lambda tenant, buckets: in_buckets(stream(tenant), buckets),
            lookup,
        )


@dataclass(frozen=True)
class Pair:
    """A source of truth and a store derived from it, compared per tenant: the one small
    declaration a new pair needs.

    `in_flight(tenant, started_at)` returns a predicate over record ids: records on their way
    (pending outbox deliveries, catalog writes newer than the check's start). `repair(tenant,
    drift)` re-derives the drifted records from the source of truth; it returns how many it
    rewrote."""

    name: str
    source: Side
    derived: Side
    in_flight: Callable[[str, Any], Callable[[str], bool]] | None = None
    repair: Callable[[str, Drift], int] | None = None
    missing_is_drift: bool = True
    rebuild: str | None = None
    """The flow that rebuilds the whole derived side from the source, for what a record-level
    repair could not fix (e.g. a search document deleted by hand leaves a tombstone whose
    version refuses the catalog's own for a while)."""

    @property
    def stores(self) -> tuple[str, str]:
        return self.source.store, self.derived.store


@dataclass(frozen=True)
class PairResult:
    """One pair's check of one tenant. `error` is set when a store could not be read."""

    pair: str
    source: str
    derived: str
    records: int = 0
    derived_records: int = 0
    buckets_differing: list[int] = field(default_factory=list)
    drift: Drift = field(default_factory=Drift)
    error: str | None = None
    repaired: int = 0
    remaining: Drift | None = None
    """After a repair: what the re-check of the drifted buckets still found."""

    @property
    def checked(self) -> bool:
        return self.error is None

    @property
    def final(self) -> Drift:
        """The drift the gate judges: what is left after a repair, else what was found."""
        return self.drift if self.remaining is None else self.remaining

    def row(self) -> dict[str, Any]:
        """The pair's line of the report table."""
        return {
            "pair": self.pair,
            "status": "error" if self.error else ("drift" if self.drift.total else "ok"),
            "records": self.records,
            "derived records": self.derived_records,
            "buckets differing": len(self.buckets_differing),
            "missing": len(self.drift.missing),
            "extra": len(self.drift.extra),
            "stale": len(self.drift.stale),
            "in flight": self.drift.in_flight,
            "repaired": self.repaired,
            "remaining": "-" if self.remaining is None else self.remaining.total,
            "sample ids": ", ".join(self.drift.ids[:SAMPLE]) or "-",
            "error": self.error or "-",
        }
