"""The reindex gate's digests and its GX suite: pure logic, no store needed."""

from __future__ import annotations

from expectations.search import ContentDigest, check_search_gate, content_digest

PAIRS = [("SKU-1", "h1"), ("SKU-2", "h2"), ("SKU-3", None)]


def test_the_digest_ignores_order_but_not_content() -> None:
    digest = content_digest(PAIRS)

    assert digest == content_digest(reversed(PAIRS))
    assert digest.count == 3
    assert content_digest([("SKU-1", "h1"), ("SKU-2", "h2"), ("SKU-3", "h3")]) != digest
    assert content_digest([("SKU-1", "h2"), ("SKU-2", "h1"), ("SKU-3", None)]) != digest


def test_a_pair_twice_changes_the_checksum() -> None:
    once = content_digest([("SKU-1", "h1")])
    twice = content_digest([("SKU-1", "h1"), ("SKU-1", "h1")])

    assert twice.checksum not in (once.checksum, content_digest([]).checksum)


def test_the_gate_passes_only_when_counts_and_checksums_match() -> None:
    digest = content_digest(PAIRS)

    assert check_search_gate(digest, content_digest(reversed(PAIRS))).passed
    assert check_search_gate(content_digest([]), content_digest([])).passed

    short = check_search_gate(digest, content_digest(PAIRS[:2]))
    assert not short.passed
    assert short.failures == [
        "the new index does not hold as many products as MongoDB",
        "the new index's (sku, content_hash) pairs differ from MongoDB's",
    ]
    changed = check_search_gate(digest, ContentDigest(3, content_digest(PAIRS[:2]).checksum))
    assert changed.failures == ["the new index's (sku, content_hash) pairs differ from MongoDB's"]
