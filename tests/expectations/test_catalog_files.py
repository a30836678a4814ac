from __future__ import annotations

import json
from decimal import Decimal
from hashlib import sha256
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domain.catalog import (
    CatalogFileError,
    ProductRecord,
    Reject,
    hash_content,
    normalized_price,
)
from expectations import catalog_files
from expectations.catalog_files import SeenSkus, read_catalog
from tests.helpers import CATALOG_FIXTURES as FIXTURES
from tests.helpers import write_parquet

TENANT = "acme"


def read_all(
    path: Path, chunk_size: int = 4, **kwargs: str
) -> tuple[list[ProductRecord], list[Reject]]:
    products: list[ProductRecord] = []
    rejects: list[Reject] = []
    for chunk in read_catalog(path, TENANT, chunk_size, **kwargs):
        assert chunk.rows_read == len(chunk.products) + len(chunk.rejects) <= chunk_size
        products += chunk.products
        rejects += chunk.rejects
    return products, rejects


def test_csv_jsonl_and_parquet_give_identical_products_and_hashes(tmp_path: Path) -> None:
    from_csv, csv_rejects = read_all(FIXTURES / "products.csv")
    from_jsonl, jsonl_rejects = read_all(FIXTURES / "products.jsonl")
    from_parquet, parquet_rejects = read_all(write_parquet(tmp_path / "products.parquet"))

    assert csv_rejects == jsonl_rejects == parquet_rejects == []
    assert len(from_csv) == 8
    assert from_csv == from_jsonl == from_parquet
    assert len({p["content_hash"] for p in from_csv}) == 8


def test_records_have_exactly_the_record_fields_and_survive_json() -> None:
    for record in read_all(FIXTURES / "products.csv")[0]:
        assert set(record) == set(ProductRecord.__annotations__)
        assert record["content_hash"] == hash_content(record)
        assert json.loads(json.dumps(record)) == record


def test_values_are_canonical() -> None:
    products = {p["sku"]: p for p in read_all(FIXTURES / "products.csv")[0]}

    assert products["KET-001"] == {
        "tenant": TENANT,
        "sku": "KET-001",
        "name": "Steel Kettle 1.7 L",
        "description": "Brushed steel, 2200 W, auto shut-off",
        "category": "kitchen/kettles",
        "price": "39.9",
        "currency": "EUR",
        "attributes": {"watts": 2200, "capacity_l": 1.7, "cordless": True},
        "tags": ["steel", "electric"],
        "stock": 12,
        "content_hash": sha256(
            b'{"attributes":{"capacity_l":1.7,"cordless":true,"watts":2200},'
            b'"category":"kitchen/kettles","currency":"EUR",'
            b'"description":"Brushed steel, 2200 W, auto shut-off","name":"Steel Kettle 1.7 L",'
            b'"price":"39.9","sku":"KET-001","tags":["steel","electric"]}'
        ).hexdigest(),
    }
    assert products["KET-002"]["description"] == "Borosilicate glass.\nBlue LED while boiling."
    assert products["MUG-10"]["name"] == 'Ceramic Mug "Morning"'
    assert products["MUG-10"]["stock"] is None and products["MUG-10"]["description"] is None
    torch = products["TOR-7"]
    assert (torch["currency"], torch["category"], torch["tags"]) == (
        "EUR",
        "Kitchen/Tools/Torches",
        ["chef", "gift"],
    )
    assert products["chair_9"]["price"] == "149"
    assert products["BOOK-978-3"]["price"] == "1299"


def test_the_hash_covers_content_only() -> None:
    product = {
        "tenant": TENANT,
        "sku": "A-1",
        "name": "Kettle",
        "description": None,
        "category": None,
        "price": str(normalized_price(Decimal("12.50"))),
        "currency": "EUR",
        "attributes": {"b": 1, "a": [True, None]},
        "tags": ["x"],
    }

    same = {**product, "price": str(normalized_price(Decimal("12.5"))), "stock": 7, "tenant": "o"}
    respelt = {
        **product,
        "price": str(normalized_price(Decimal("12.5000"))),
        "attributes": {"a": [True, None], "b": 1},
    }
    renamed = {**product, "name": "Kettle 2"}
    assert hash_content(product) == hash_content(respelt) == hash_content(same)
    assert hash_content(renamed) != hash_content(product)
    assert len(hash_content(product)) == 64


NASTY_REJECTS = [
    (3, ["row"], "expected 9 fields, found 3"),
    (5, ["row"], "malformed CSV: ',' expected after '\"'"),
    (7, ["name"], "name is not valid UTF-8"),
    (8, ["price"], "price must be greater than 0"),
    (9, ["price"], "price is missing"),
    (10, ["sku"], "sku is missing"),
    (11, ["price"], "price is not a number"),
    (12, ["currency"], "currency is not an active ISO 4217 code"),
    (13, ["stock"], "stock must be a whole number from 0 to 999999999"),
    (14, ["stock"], "stock must be a whole number from 0 to 999999999"),
    (15, ["name"], "name is longer than 300 characters"),
    (16, ["description"], "description is longer than 10000 characters"),
    (
        17,
        ["sku"],
        "sku must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    ),
    (
        18,
        ["attributes"],
        "attributes are not valid JSON: Expecting property name enclosed in "
        "double quotes at character 2",
    ),
    (
        19,
        ["attributes"],
        "attribute key '$where' must be 1-64 letters, digits, spaces, '_' or "
        "'-', not starting with a space or '-'",
    ),
    (20, ["attributes"], "attributes must be a JSON object, not a list"),
    (21, ["tags"], "more than 50 tags"),
    (23, ["sku"], "duplicate sku 'GOOD-1', first on line 2"),
    (
        24,
        ["category"],
        "category must be 1-8 non-empty segments separated by '/', like 'kitchen/kettles'",
    ),
    (25, ["price"], "price must be greater than 0"),
    (
        26,
        ["price"],
        "price must be a plain decimal number with at most 12 digits before the "
        "point and 4 after it, like 12.50",
    ),
    (27, ["currency"], "currency is missing"),
    (28, ["name"], "name is missing"),
    (29, ["name"], "name contains control characters"),
    (30, ["row"], "expected 9 fields, found 10"),
    (34, ["tags"], "a tag is longer than 64 characters"),
    (35, ["attributes"], "attributes are larger than 16384 bytes of JSON"),
    (
        36,
        ["row"],
        "malformed CSV: ',' expected after '\"' (the record ran on to line 38; lines "
        "after this one are reread)",
    ),
]


@pytest.mark.parametrize("chunk_size", [1, 7, 10_000])
def test_every_bad_row_of_the_nasty_file_is_rejected_with_line_field_and_reason(
    chunk_size: int,
) -> None:
    products, rejects = read_all(FIXTURES / "nasty.csv", chunk_size)

    assert [(r.line, r.fields, r.reason) for r in rejects] == NASTY_REJECTS
    assert {r.source for r in rejects} == {str(FIXTURES / "nasty.csv")}
    assert {r.tenant for r in rejects} == {TENANT}
    assert [p["sku"] for p in products] == [f"GOOD-{i}" for i in range(1, 9)]


def test_every_good_row_of_the_nasty_file_comes_through_literally() -> None:
    products = {p["sku"]: p for p in read_all(FIXTURES / "nasty.csv")[0]}

    assert products["GOOD-1"]["name"] == "Plain kettle"
    assert products["GOOD-2"]["name"] == "' OR 1=1 --"
    assert products["GOOD-2"]["description"] == "Robert'); DROP TABLE products;--"
    assert products["GOOD-3"]["name"] == '{"$gt": ""}'
    assert products["GOOD-3"]["description"] == "MATCH (n) DETACH DELETE n"
    assert products["GOOD-3"]["attributes"] == {"query": "db.products.find({$where: 'sleep(100)'})"}
    assert products["GOOD-3"]["currency"] == "USD"
    assert products["GOOD-4"]["name"] == "MERGE (p:Product {sku: 'x'}) SET p.price = 0"
    assert products["GOOD-4"]["description"] == "name:kettle AND price:[0 TO *] OR _exists_:sku"
    assert products["GOOD-4"]["tags"] == [
        "*:*",
        "SELECT * FROM products WHERE token(sku) > 0 ALLOW FILTERING",
    ]
    assert products["GOOD-5"]["name"] == "Multi-line\nname is fine"
    assert products["GOOD-6"]["name"] == "Swallowed then recovered"
    assert products["GOOD-7"]["name"] == 'Quoted "again"'


def test_rejects_keep_a_truncated_excerpt_of_the_raw_line() -> None:
    rejects = {r.line: r for r in read_all(FIXTURES / "nasty.csv")[1]}

    assert rejects[7].raw == "BAD-UTF8,Caf\\xe9 cr\\xe8me,,kitchen,3.00,EUR,,,"
    assert rejects[3].raw == "BAD-COLS,Only three fields,oops"
    assert len(rejects[16].raw) == 500 and rejects[16].raw.endswith("…")


def test_jsonl_bad_lines_and_wrong_types(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = {"sku": "OK-1", "name": "Fine", "price": "1.50", "currency": "USD"}
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(good).encode(),
                b'{"sku": "J-2", "name": "broken',
                b"[1, 2, 3]",
                b'{"sku": "J-4", "name": "Caf\xe9", "price": 1, "currency": "USD"}',
                json.dumps({**good, "sku": "J-5", "name": {"$gt": ""}, "price": True}).encode(),
                json.dumps({**good, "sku": "J-6", "stock": "x", "tags": [1, 2]}).encode(),
                json.dumps({**good, "sku": "J-7", "attributes": {"a.b": 1}}).encode(),
                b'{"sku": "J-8", "name": "NaN", "price": NaN, "currency": "USD"}',
                json.dumps({**good, "sku": "OK-2", "stock": 3}).encode(),
            ]
        )
    )

    products, rejects = read_all(path)

    assert [p["sku"] for p in products] == ["OK-1", "OK-2"]
    assert [(r.line, r.fields, r.reason) for r in rejects] == [
        (2, ["row"], "invalid JSON: Unterminated string starting at character 24"),
        (3, ["row"], "the line is not a JSON object"),
        (4, ["row"], "not valid UTF-8 at byte 28"),
        (
            5,
            ["name", "price"],
            "name must be text or a number, not an object; "
            "price must be text or a number, not true/false",
        ),
        (
            6,
            ["tags", "stock"],
            "tags must be '|'-separated text or a list of text, not a list; "
            "stock must be a whole number from 0 to 999999999",
        ),
        (
            7,
            ["attributes"],
            "attribute key 'a.b' must be 1-64 letters, digits, spaces, '_' or "
            "'-', not starting with a space or '-'",
        ),
        (8, ["row"], "invalid JSON: NaN is not a JSON number"),
    ]


def test_a_bom_and_crlf_line_ends_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    text = (FIXTURES / "products.csv").read_text(encoding="utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())

    assert read_all(path) == read_all(FIXTURES / "products.csv")


def test_duplicates_are_found_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "dups.csv"
    path.write_text(
        "sku,name,price,currency\nA,a,1,USD\nB,b,1,USD\nA,a2,1,USD\nC,c,1,USD\nB,b2,1,USD\n"
        "B,b3,1,USD\n,none,1,USD\n"
    )

    for chunk_size in (1, 2, 100):
        products, rejects = read_all(path, chunk_size)
        assert [p["sku"] for p in products] == ["A", "B", "C"]
        assert [(r.line, r.reason) for r in rejects] == [
            (4, "duplicate sku 'A', first on line 2"),
            (6, "duplicate sku 'B', first on line 3"),
            (7, "duplicate sku 'B', first on line 3"),
            (8, "sku is missing"),
        ]


def test_seen_skus_remembers_the_first_line() -> None:
    seen = SeenSkus()

    assert seen.claim({2: "b", 3: "a", 4: "b"}) == {4: 2}
    assert seen.claim({5: "c", 6: "a", 7: "c", 8: "d"}) == {6: 3, 7: 5}
    assert seen.claim({9: "d", 10: "e"}) == {9: 8}
    assert seen.claim({}) == {}


def test_an_oversized_csv_field_loses_only_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    huge = "x" * 200_000
    path.write_text(f'sku,name,price,currency\nA,a,1,USD\nB,"{huge}\nC,c,1,USD\nD,d,1,USD\n')

    products, rejects = read_all(path)

    assert [p["sku"] for p in products] == ["A", "C", "D"]
    assert [(r.line, r.reason) for r in rejects] == [
        (3, "malformed CSV: field larger than field limit (131072)"),
    ]


def test_an_overlong_line_is_rejected_without_being_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog_files, "MAX_LINE_BYTES", 64)
    csv_path = tmp_path / "long.csv"
    csv_path.write_text(f"sku,name,price,currency\nA,{'a' * 100},1,USD\nB,b,1,USD\n")
    jsonl_path = tmp_path / "long.jsonl"
    jsonl_path.write_text(f'{{"sku": "A", "name": "{"a" * 100}"}}\n{{"sku": "B"}}\n')

    csv_products, csv_rejects = read_all(csv_path)
    jsonl_products, jsonl_rejects = read_all(jsonl_path)

    assert [p["sku"] for p in csv_products] == ["B"]
    assert [(r.line, r.reason) for r in csv_rejects] == [(2, "the line is longer than 64 bytes")]
    assert jsonl_products == []
    assert [(r.line, r.reason) for r in jsonl_rejects] == [
        (1, "longer than 64 bytes"),
        (2, "name is missing; price is missing; currency is missing"),
    ]


def test_parquet_rows_are_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pq.write_table(
        pa.table(
            {
                "sku": ["P-1", "P-2", "P-1"],
                "name": ["a", None, "c"],
                "price": [1.5, 2.0, 3.0],
                "currency": ["USD", "USD", "EUR"],
            }
        ),
        path,
    )

    products, rejects = read_all(path, 2)

    assert [p["sku"] for p in products] == ["P-1"]
    assert [(r.line, r.fields, r.reason) for r in rejects] == [
        (2, ["name"], "name is missing"),
        (3, ["sku"], "duplicate sku 'P-1', first on line 1"),
    ]
    assert json.loads(rejects[0].raw) == {
        "sku": "P-2",
        "name": None,
        "price": 2.0,
        "currency": "USD",
    }


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.csv", None, "no such file"),
        ("empty.csv", b"", "empty file, no header line"),
        (
            "columns.csv",
            b"sku,title,price\nA,a,1\n",
            "missing required column(s) name, currency; found sku, title, price",
        ),
        ("twice.csv", b"sku,name,price,currency,SKU\n", "duplicate column(s): sku"),
        (
            "binary.csv",
            b"PAR1\x15\x04\x00\x00\nrest",
            "the header line is not UTF-8 text: not a CSV file",
        ),
        ("table.jsonl", b"sku,name\nA,a\n", "the first line is not a JSON object: not JSONL"),
        ("text.parquet", b"sku,name\n", "not a Parquet file"),
        ("products.xlsx", b"", "unknown extension; the format is csv, jsonl or parquet"),
    ],
)
def test_an_unreadable_file_raises_one_clear_error(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(CatalogFileError) as caught:
        list(read_catalog(path, TENANT))

    assert str(path) in str(caught.value)
    assert caught.value.reason.startswith(reason)


def test_a_parquet_file_damaged_mid_way_raises_after_the_good_chunks(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "products.parquet")
    second_group = pq.ParquetFile(path).metadata.row_group(1).column(0)
    data = bytearray(path.read_bytes())
    start = second_group.data_page_offset
    data[start : start + 32] = b"\xff" * 32
    path.write_bytes(bytes(data))
    chunks = read_catalog(path, TENANT, 3)

    assert [p["sku"] for p in next(chunks).products] == ["KET-001", "KET-002", "MUG-10"]
    with pytest.raises(CatalogFileError) as caught:
        next(chunks)
    assert caught.value.path == str(path)
    assert caught.value.reason.startswith("unreadable after row 3")


def test_the_format_can_be_given_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes((FIXTURES / "products.jsonl").read_bytes())

    products, _ = read_all(path, file_format="jsonl")

    assert len(products) == 8
    with pytest.raises(CatalogFileError, match="unknown format 'xml'"):
        list(read_catalog(path, TENANT, file_format="xml"))
