"""Reading catalog files (CSV, JSONL, Parquet) in chunks, in memory bounded by the chunk size.

Every row read comes out of `read_catalog` as a product or as a reject naming its line: for CSV
and JSONL the physical 1-based line (the CSV header is line 1, and a CSV record with a quoted
newline is named by its first line), for Parquet the 1-based row. A bad row never takes a good
neighbour with it. A file that cannot be read at all raises `CatalogFileError` when iteration
starts; a Parquet file damaged after its start raises it mid-way, after the chunks before the
damage have been yielded.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from io import BufferedReader
from itertools import count, islice
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from domain.catalog import (
    COLUMNS,
    REQUIRED_COLUMNS,
    ROW,
    CatalogChunk,
    CatalogFileError,
    Reject,
    canonical_row,
    excerpt,
    parse_json,
    product_record,
)
from domain.tenancy import check_tenant
from expectations.catalog import product_frame, validate_product_frame

FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
MAX_LINE_BYTES = 4 << 20
"""Longer lines are rejected unread: no CSV row within the field limits is that long."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One row as read: its values by column, or the reasons it could not be read, by field."""

    line: int
    raw: str | None
    """The row as written, for rejects; None when `values` is the best spelling (Parquet)."""
    values: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def read_catalog(
    path: str | Path, tenant: str, chunk_size: int = 10_000, file_format: str | None = None
) -> Iterator[CatalogChunk]:
    """Stream a catalog file as checked chunks of at most `chunk_size` rows.

    `file_format` is "csv", "jsonl" or "parquet"; by default it comes from the extension. A sku
    belongs to its first row in the file, valid or not: later rows with it are rejected, across
    chunks too. Memory grows with the chunk size, not the file (plus 16 bytes a distinct sku);
    each chunk pays ~0.25 s of GX overhead whatever its size, so chunks of 5,000-20,000 rows.
    """
    check_tenant(tenant)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    path = Path(path)
    rows = _READERS[_format(path, file_format)](path, chunk_size)
    seen = SeenSkus()
    while (chunk := _check(islice(rows, chunk_size), tenant, str(path), seen)).rows_read:
        yield chunk


def _format(path: Path, file_format: str | None) -> str:
    name = (file_format or FORMATS.get(path.suffix.lower(), "")).lower().lstrip(".")
    if name not in _READERS:
        what = f"unknown format {file_format!r}" if file_format else "unknown extension"
        raise CatalogFileError(path, f"{what}; the format is csv, jsonl or parquet")
    return name


def _check(rows: Iterable[SourceRow], tenant: str, source: str, seen: SeenSkus) -> CatalogChunk:
    """Validate a chunk: type errors, then the GX suite, then duplicate skus; first reason wins.

    Rows are consumed one by one and only their canonical values and raw text are kept: the
    source rows of a chunk are never all in memory at once.
    """
    raws: dict[int, str | dict[str, Any]] = {}
    problems: dict[int, dict[str, str]] = {}
    canonical: dict[int, dict[str, Any]] = {}
    for row in rows:
        raws[row.line] = row.raw if row.raw is not None else row.values
        if row.problems:
            problems[row.line] = dict(row.problems)
            continue
        canonical[row.line], issues = canonical_row(row.values)
        if issues:
            problems[row.line] = issues
    found = validate_product_frame(product_frame(canonical)).failures if canonical else {}
    duplicates = seen.claim({line: row["sku"] for line, row in canonical.items() if row["sku"]})
    for line, first in duplicates.items():
        reason = f"duplicate sku {canonical[line]['sku']!r}, first on line {first}"
        found.setdefault(line, {}).setdefault("sku", reason)
    for line, reasons in found.items():
        for name, reason in reasons.items():
            problems.setdefault(line, {}).setdefault(name, reason)
    return CatalogChunk(
        source=source,
        rows_read=len(raws),
        products=[
            product_record(tenant, row) for line, row in canonical.items() if line not in problems
        ],
        rejects=[
            Reject(
                tenant=tenant,
                source=source,
                line=line,
                fields=list(reasons),
                reason="; ".join(reasons.values()),
                raw=excerpt(_text_of(raws[line])),
            )
            for line, reasons in sorted(problems.items())
        ],
    )


def _text_of(raw: str | dict[str, Any]) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw, default=str, ensure_ascii=False)


class SeenSkus:
    """The first line of every sku seen in a file, as sorted 12-byte blake2b digests.

    16 bytes a sku, where a dict of str would take ~150: a million skus cost 16 MB (32 MB for a
    moment while a chunk's skus are merged in). Two of a billion skus share a 96-bit digest with
    a probability of 1e-11.
    """

    def __init__(self) -> None:
        self._digests = np.empty(0, dtype="S12")
        self._lines = np.empty(0, dtype=np.uint32)

    def claim(self, skus: Mapping[int, str]) -> dict[int, int]:
        """Record the skus by line; return {line: first line} for those seen before."""
        if not skus:
            return {}
        lines = np.fromiter(skus, dtype=np.uint32, count=len(skus))
        digests = np.array(
            [blake2b(sku.encode(), digest_size=12).digest() for sku in skus.values()], dtype="S12"
        )
        unique, first, inverse = np.unique(digests, return_index=True, return_inverse=True)
        earliest = lines[first]
        position = np.searchsorted(self._digests, unique)
        known = np.zeros(len(unique), dtype=bool)
        if len(self._digests):
            at = np.minimum(position, len(self._digests) - 1)
            known = self._digests[at] == unique
            earliest = np.where(known, self._lines[at], earliest)
        self._digests = np.insert(self._digests, position[~known], unique[~known])
        self._lines = np.insert(self._lines, position[~known], earliest[~known])
        return {
            int(line): int(first_line)
            for line, first_line in zip(lines, earliest[inverse], strict=True)
            if line != first_line
        }


def _open(path: Path) -> BufferedReader:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise CatalogFileError(path, "no such file") from None
    except OSError as error:
        raise CatalogFileError(path, error.strerror or str(error)) from None


def _physical_lines(stream: BufferedReader) -> Iterator[tuple[int, bytes, bool]]:
    """(number, bytes, whole) of each line; of a line over MAX_LINE_BYTES only the start is kept,
    so a file without line breaks (binary, or one huge line) cannot fill the memory."""
    for number in count(1):
        data = stream.readline(MAX_LINE_BYTES)
        if not data:
            return
        whole = data.endswith(b"\n") or len(data) < MAX_LINE_BYTES
        rest = data
        while not rest.endswith(b"\n") and len(rest) == MAX_LINE_BYTES:
            rest = stream.readline(MAX_LINE_BYTES)
        yield number, data.removeprefix(codecs.BOM_UTF8) if number == 1 else data, whole


def _column_key(name: object) -> str:
    return str(name).strip().lower()


def _check_columns(path: Path, columns: list[str]) -> None:
    twice = sorted({c for c in columns if c in COLUMNS and columns.count(c) > 1})
    if twice:
        raise CatalogFileError(path, f"duplicate column(s): {', '.join(twice)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CatalogFileError(
            path, f"missing required column(s) {', '.join(missing)}; found {', '.join(columns)}"
        )


class _LineTooLong(Exception):
    """Raised through `csv.reader`, which passes on what its line iterator raises."""


_UTF8, _NOT_UTF8, _TOO_LONG = "utf-8", "not utf-8", "too long"


class _Lines:
    """A CSV file's physical lines for `csv.reader`, remembering which ones each record used.

    Bad quoting can make one record swallow the lines after it. Such a record is rejected on its
    first line only and its other lines are read again, so they still come out as rows. Lines
    that are not UTF-8 are decoded with surrogate escapes and flagged, to be rejected per field.
    """

    def __init__(self, stream: BufferedReader) -> None:
        self._lines = _physical_lines(stream)
        self._again: deque[tuple[int, str, str]] = deque()
        self.record: list[tuple[int, str, str]] = []
        """(line number, text, state) of the lines the current record used."""

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._again:
            line = self._again.popleft()
        else:
            number, data, whole = next(self._lines)
            try:
                line = (number, data.decode(), _UTF8 if whole else _TOO_LONG)
            except UnicodeDecodeError:
                text = data.decode("utf-8", "surrogateescape")
                line = (number, text, _NOT_UTF8 if whole else _TOO_LONG)
        self.record.append(line)
        if line[2] == _TOO_LONG:
            raise _LineTooLong(f"the line is longer than {MAX_LINE_BYTES} bytes")
        return line[1]

    def reject(self, reason: str) -> SourceRow:
        """Reject the record's first line; its other lines will be read again."""
        (number, text, state), *rest = self.record
        if rest:
            reason += f" (the record ran on to line {rest[-1][0]}; lines after this one are reread)"
        self._again.extendleft(reversed(rest))
        return SourceRow(number, _shown(text, state), problems={ROW: reason})

    def row(self, values: dict[str, str]) -> SourceRow:
        raw = "".join(_shown(text, state) for _, text, state in self.record)
        number = self.record[0][0]
        if all(state == _UTF8 for _, _, state in self.record):
            return SourceRow(number, raw, values)
        bad = [c for c in COLUMNS if c in values and not _encodable(values[c])]
        if not bad:
            return SourceRow(number, raw, values)
        return SourceRow(number, raw, problems={c: f"{c} is not valid UTF-8" for c in bad})


def _shown(text: str, state: str) -> str:
    """Text as an operator may see it: bytes that are not UTF-8 as \\x escapes."""
    if state == _UTF8:
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _csv_rows(path: Path, chunk_size: int) -> Iterator[SourceRow]:
    with _open(path) as stream:
        lines = _Lines(stream)
        reader = csv.reader(lines, strict=True)
        try:
            header = next((fields for fields in reader if fields), None)
        except (csv.Error, _LineTooLong) as error:
            raise CatalogFileError(path, f"unreadable header line ({error})") from None
        if header is None:
            raise CatalogFileError(path, "empty file, no header line")
        if any(state != _UTF8 for _, _, state in lines.record) or "\0" in "".join(header):
            raise CatalogFileError(path, "the header line is not UTF-8 text: not a CSV file")
        columns = [_column_key(name) for name in header]
        _check_columns(path, columns)
        while True:
            lines.record.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield lines.reject(f"malformed CSV: {error}")
                continue
            except _LineTooLong as error:
                yield lines.reject(str(error))
                continue
            if not fields:
                continue
            if len(fields) != len(columns):
                yield lines.reject(f"expected {len(columns)} fields, found {len(fields)}")
                continue
            yield lines.row(dict(zip(columns, fields, strict=True)))


def _jsonl_rows(path: Path, chunk_size: int) -> Iterator[SourceRow]:
    with _open(path) as stream:
        started = False
        for number, data, whole in _physical_lines(stream):
            if not data.strip():
                continue
            if not started and not data.lstrip().startswith(b"{"):
                raise CatalogFileError(path, "the first line is not a JSON object: not JSONL")
            started = True
            yield _json_line(number, data, whole)


def _json_line(number: int, data: bytes, whole: bool) -> SourceRow:
    if not whole:
        raw = data.decode("utf-8", "backslashreplace")
        return SourceRow(number, raw, problems={ROW: f"longer than {MAX_LINE_BYTES} bytes"})
    try:
        text = data.decode()
    except UnicodeDecodeError as error:
        raw = data.decode("utf-8", "backslashreplace")
        return SourceRow(number, raw, problems={ROW: f"not valid UTF-8 at byte {error.start + 1}"})
    value, problem = parse_json(text.rstrip("\r\n"), exact=True)
    if problem:
        return SourceRow(number, text, problems={ROW: f"invalid JSON: {problem}"})
    if not isinstance(value, dict):
        return SourceRow(number, text, problems={ROW: "the line is not a JSON object"})
    return SourceRow(number, text, {_column_key(key): item for key, item in value.items()})


def _parquet_rows(path: Path, chunk_size: int) -> Iterator[SourceRow]:
    with _open(path) as stream:
        try:
            parquet = pq.ParquetFile(stream)
        except (pa.ArrowException, OSError) as error:
            raise CatalogFileError(path, f"not a Parquet file ({error})") from None
        names = parquet.schema_arrow.names
        _check_columns(path, [_column_key(name) for name in names])
        wanted = [name for name in names if _column_key(name) in COLUMNS]
        batches = parquet.iter_batches(batch_size=chunk_size, columns=wanted)
        number = 0
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as error:
                raise CatalogFileError(path, f"unreadable after row {number} ({error})") from None
            if batch is None:
                return
            for record in batch.to_pylist():
                number += 1
                yield SourceRow(number, None, {_column_key(k): v for k, v in record.items()})


_READERS: dict[str, Callable[[Path, int], Iterator[SourceRow]]] = {
    # (path, chunk size) -> rows; only Parquet uses the chunk size, as its read batch size
    "csv": _csv_rows,
    "jsonl": _jsonl_rows,
    "parquet": _parquet_rows,
}
