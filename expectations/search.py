"""The gate of a search reindex: the new index must hold exactly what MongoDB holds.

Each side is reduced, while it is streamed, to a `ContentDigest`: how many products and an
order-independent checksum over their (sku, content_hash) pairs, the sum modulo 2**256 of each
pair's SHA-256. A sum, unlike a XOR, also notices a pair that is there twice. The two digests
become one row, and GX checks that each pair of columns is equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd

from expectations.validation import FrameSuite

CHECKSUM_MODULUS = 2**256


@dataclass(frozen=True)
class ContentDigest:
    """How many products one side holds, and the checksum of their (sku, content_hash) pairs."""

    count: int
    checksum: str


def content_digest(pairs: Iterable[tuple[str, str | None]]) -> ContentDigest:
    """Fold (sku, content_hash) pairs in any order into a digest, one pair in memory at a time."""
    count = 0
    total = 0
    for pair in pairs:
        digest = sha256(json.dumps(list(pair), separators=(",", ":")).encode()).digest()
        total = (total + int.from_bytes(digest, "big")) % CHECKSUM_MODULUS
        count += 1
    return ContentDigest(count=count, checksum=f"{total:064x}")


def search_suite() -> gx.ExpectationSuite:
    """Counts equal, checksums equal; each expectation says in `meta` what a failure means."""
    return gx.ExpectationSuite(
        name="search_reindex_gate",
        expectations=[
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="mongodb_count",
                column_B="elasticsearch_count",
                meta={"reason": "the new index does not hold as many products as MongoDB"},
            ),
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A="mongodb_checksum",
                column_B="elasticsearch_checksum",
                meta={"reason": "the new index's (sku, content_hash) pairs differ from MongoDB's"},
            ),
        ],
    )


SEARCH_GATE = FrameSuite("search", search_suite)


@dataclass(frozen=True)
class GateResult:
    """Whether the new index may go live, both digests, and the reason of each failed check."""

    passed: bool
    mongodb: ContentDigest
    elasticsearch: ContentDigest
    failures: list[str]


def check_search_gate(mongodb: ContentDigest, elasticsearch: ContentDigest) -> GateResult:
    """Validate the two digests with the suite; an expectation that errors is a bug, so raises.

    Failures come in suite order (GX groups results by column), counts before checksums.
    """
    frame = pd.DataFrame(
        [
            {
                "mongodb_count": mongodb.count,
                "elasticsearch_count": elasticsearch.count,
                "mongodb_checksum": mongodb.checksum,
                "elasticsearch_checksum": elasticsearch.checksum,
            }
        ]
    )
    failures = []
    for outcome in SEARCH_GATE.outcomes(frame):
        if outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"expectation {outcome.expectation_config.type} failed to run: "
                f"{outcome.exception_info.get('exception_message')}"
            )
        if not outcome.success:
            failures.append(outcome.expectation_config.meta["reason"])
    return GateResult(
        passed=not failures,
        mongodb=mongodb,
        elasticsearch=elasticsearch,
        failures=failures,
    )
