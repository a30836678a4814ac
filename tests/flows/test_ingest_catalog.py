"""ingest-catalog end to end on the real stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.catalog import CatalogFileError
from expectations.catalog_files import read_catalog
from flows.artifacts import markdown_table
from flows.ingest_catalog import ingest_catalog
from flows.quarantine_gate import RejectShareExceeded
from stores import elasticsearch, mongodb, neo4j, postgres, redis
from tests.helpers import CATALOG_FIXTURES, write_parquet

PRODUCTS_CSV = CATALOG_FIXTURES / "products.csv"
NASTY_CSV = CATALOG_FIXTURES / "nasty.csv"


def skus_of(path: Path) -> list[str]:
    return [p["sku"] for chunk in read_catalog(path, "any", 100) for p in chunk.products]


def stored_counts(tenant: str, skus: list[str]) -> dict[str, int]:
    """How many of `skus` each store holds for the tenant."""
    es = elasticsearch.client()
    return {
        "mongodb": len(mongodb.find_products(tenant, skus)),
        "elasticsearch": es.count(index=elasticsearch.read_alias(tenant))["count"]
        if es.indices.exists_alias(name=elasticsearch.read_alias(tenant))
        else 0,
        "redis": len(redis.cached_products(tenant, skus)),
        "neo4j": len(set(neo4j.products(tenant)) & set(skus)),
    }


@pytest.mark.parametrize("file_format", ["csv", "jsonl", "parquet"])
def test_every_format_lands_in_all_four_stores(
    file_format: str, tenant: str, tmp_path: Path
) -> None:
    path = (
        write_parquet(tmp_path / "products.parquet")
        if file_format == "parquet"
        else CATALOG_FIXTURES / f"products.{file_format}"
    )
    skus = skus_of(path)

    summary = ingest_catalog(str(path), tenant, chunk_size=3)

    assert (summary.rows_read, summary.inserted, summary.rejected) == (8, 8, 0)
    elasticsearch.refresh(tenant)
    assert stored_counts(tenant, skus) == dict.fromkeys(
        ("mongodb", "elasticsearch", "redis", "neo4j"), 8
    )
    assert postgres.get_inventory(tenant, ["KET-001", "KET-002"]) == {"KET-001": 12, "KET-002": 0}
    assert {r["sku"] for r in elasticsearch.search_products(tenant, "kettle")} >= {"KET-001"}


def test_reimporting_the_same_file_changes_nothing(tenant: str) -> None:
    ingest_catalog(str(PRODUCTS_CSV), tenant, chunk_size=3)
    before = mongodb.find_products(tenant, skus_of(PRODUCTS_CSV))

    again = ingest_catalog(str(PRODUCTS_CSV), tenant, chunk_size=5)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 8)
    assert mongodb.find_products(tenant, skus_of(PRODUCTS_CSV)) == before
    elasticsearch.refresh(tenant)
    assert stored_counts(tenant, skus_of(PRODUCTS_CSV))["elasticsearch"] == 8


def test_bad_rows_are_quarantined_with_reasons_and_good_rows_land_literally(
    tenant: str,
) -> None:
    expected = [r for chunk in read_catalog(NASTY_CSV, tenant, 100) for r in chunk.rejects]
    good = skus_of(NASTY_CSV)

    summary = ingest_catalog(str(NASTY_CSV), tenant, max_reject_share=1.0)

    quarantined = mongodb.rejects_of(tenant, str(NASTY_CSV))
    assert [(r["line"], r["fields"], r["reason"]) for r in quarantined] == [
        (r.line, r.fields, r.reason) for r in expected
    ]
    assert summary.rejected == len(expected) and summary.inserted == len(good)
    stored = mongodb.find_products(tenant, good)
    assert set(stored) == set(good)
    elasticsearch.refresh(tenant)
    assert stored_counts(tenant, good) == dict.fromkeys(
        ("mongodb", "elasticsearch", "redis", "neo4j"), len(good)
    )


def test_the_reject_share_gate_stops_publishing(tenant: str) -> None:
    with pytest.raises(RejectShareExceeded, match=r"rows of .*nasty\.csv were rejected"):
        ingest_catalog(str(NASTY_CSV), tenant, max_reject_share=0.05)

    assert mongodb.rejects_of(tenant, str(NASTY_CSV))
    assert stored_counts(tenant, skus_of(NASTY_CSV)) == dict.fromkeys(
        ("mongodb", "elasticsearch", "redis", "neo4j"), 0
    )


def test_an_unreadable_file_fails_the_run_naming_it(tenant: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(CatalogFileError, match=r"nowhere\.csv"):
        ingest_catalog(str(missing), tenant)


def test_a_row_fixed_and_reimported_leaves_the_current_quarantine(
    tenant: str, tmp_path: Path
) -> None:
    source = tmp_path / "products.csv"
    source.write_text("sku,name,price,currency\nA-1,Kettle,12.345,EUR\nB-1,Mug,oops,EUR\n")
    ingest_catalog(str(source), tenant, max_reject_share=1.0)
    assert [r["line"] for r in mongodb.rejects_of(tenant, str(source))] == [2, 3]

    source.write_text("sku,name,price,currency\nA-1,Kettle,12.35,EUR\nB-1,Mug,oops,EUR\n")
    summary = ingest_catalog(str(source), tenant, max_reject_share=1.0)

    assert summary.inserted == 1
    assert [r["line"] for r in mongodb.rejects_of(tenant, str(source))] == [3]
    history = mongodb.rejects_of(tenant, str(source), current=False)
    assert [(r["line"], r["superseded_at"] is None) for r in history] == [(2, False), (3, True)]
    assert "more decimals than EUR allows" in history[0]["reason"]


def test_reject_reasons_show_as_text_in_the_artifact() -> None:
    table = markdown_table(("line", "reason"), [(2, "name <b>x</b> | `rm` *bold*\nnext")])
    assert "<b>" not in table and "&lt;b&gt;" in table
    assert table.splitlines()[2] == r"| 2 | name &lt;b&gt;x&lt;/b&gt; \| \`rm\` \*bold\* next |"
