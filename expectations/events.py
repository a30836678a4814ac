"""Storefront event files (JSONL, Parquet): streamed in chunks, each validated by a GX suite.

Every row read comes out of `read_events` as an event or as a reject naming its file, line
(JSONL: the physical 1-based line; Parquet: the 1-based row) and reason, as catalog files do.
Memory is bounded by the chunk. What GX judges: the id, type, time (neither in the future nor
older than the retention), shopper and session ids, the sku where the type needs one, and the
size of the properties. Parsing (JSON, ISO 8601 with a timezone) and the tenant come first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from domain.analytics import (
    FUTURE_TOLERANCE,
    ID_PATTERN,
    MAX_PROPERTIES_BYTES,
    RETENTION,
    SKU_TYPES,
    STOREFRONT_TYPES,
    StorefrontEvent,
)
from domain.catalog import Reject, excerpt
from domain.codes import SKU_PATTERN
from domain.tenancy import check_tenant

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
FIELDS = ("event_id", "tenant", "occurred_at", "event_type", "user_id", "session_id", "sku")
MAX_LINE_BYTES = 64 << 10
PARQUET_SCHEMA = pa.schema([*((name, pa.string()) for name in FIELDS), ("properties", pa.string())])


class EventFileError(ValueError):
    """An event file that cannot be read at all."""


@dataclass(frozen=True)
class EventChunk:
    source: str
    rows_read: int
    events: list[StorefrontEvent]
    rejects: list[Reject]


def _expect(expectation: Any, field: str, reason: str, **kw: Any) -> Any:
    return expectation(meta={"field": field, "reason": reason}, **kw)


def _present(column: str, field: str | None = None, reason: str | None = None) -> Any:
    import great_expectations.expectations as gxe

    field = field or column
    return _expect(
        gxe.ExpectColumnValuesToNotBeNull, field, reason or f"{field} is missing", column=column
    )


def _matching(column: str, regex: str, reason: str) -> Any:
    import great_expectations.expectations as gxe

    return _expect(gxe.ExpectColumnValuesToMatchRegex, column, reason, column=column, regex=regex)


def event_suite() -> Any:
    """The expectations every storefront event meets, in the order their reasons take priority."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    id_reason = "must be 1-128 letters, digits or . _ : @ -, starting with a letter or digit"
    expectations = [
        _present("event_id"),
        _matching("event_id", ID_PATTERN, f"event_id {id_reason}"),
        _present("event_type"),
        _expect(
            gxe.ExpectColumnValuesToBeInSet,
            "event_type",
            f"event_type is not one of {', '.join(STOREFRONT_TYPES)}",
            column="event_type",
            value_set=list(STOREFRONT_TYPES),
        ),
        _present("age_seconds", "occurred_at"),
        _expect(
            gxe.ExpectColumnValuesToBeBetween,
            "occurred_at",
            "occurred_at is in the future",
            column="age_seconds",
            min_value=-FUTURE_TOLERANCE.total_seconds(),
        ),
        _expect(
            gxe.ExpectColumnValuesToBeBetween,
            "occurred_at",
            f"occurred_at is older than the retention of {RETENTION.days} days",
            column="age_seconds",
            max_value=RETENTION.total_seconds(),
        ),
        _present("user_id"),
        _matching("user_id", ID_PATTERN, f"user_id {id_reason}"),
        _present("session_id"),
        _matching("session_id", ID_PATTERN, f"session_id {id_reason}"),
        _present("sku_needed", "sku", "sku is missing; product_viewed and added_to_cart need one"),
        _matching(
            "sku",
            SKU_PATTERN,
            "sku must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ),
        _expect(
            gxe.ExpectColumnValuesToBeBetween,
            "properties",
            f"properties are larger than {MAX_PROPERTIES_BYTES} bytes of JSON",
            column="properties_size",
            max_value=MAX_PROPERTIES_BYTES,
        ),
    ]
    return gx.ExpectationSuite(name="storefront_events", expectations=expectations)


@cache
def _event_rows() -> Any:
    """The suite, built on first use: `polyflow events generate` never imports GX or pandas."""
    from expectations.validation import FrameSuite

    return FrameSuite("storefront_events", event_suite)


def event_frame(rows: Mapping[int, Mapping[str, Any]], now: datetime) -> Any:
    """The frame GX validates, one row per parsed event, indexed by line."""
    import pandas as pd

    lines = list(rows)
    frame = pd.DataFrame(
        {
            column: [rows[line].get(column) for line in lines]
            for column in ("event_id", "event_type", "user_id", "session_id", "sku")
        },
        index=lines,
        dtype=object,
    )
    now_ts = now.timestamp()
    frame["age_seconds"] = pd.array(
        [
            now_ts - rows[line]["occurred_at"].timestamp() if rows[line]["occurred_at"] else None
            for line in lines
        ],
        dtype="Float64",
    )
    frame["sku_needed"] = [
        rows[line].get("sku") if rows[line].get("event_type") in SKU_TYPES else "-"
        for line in lines
    ]
    frame["properties_size"] = [rows[line]["properties_size"] for line in lines]
    return frame


def failures(frame: Any) -> dict[int, dict[str, str]]:
    """Line -> field -> reason for the rows of `frame` the suite rejects."""
    found: dict[int, dict[str, str]] = {}
    for outcome in _event_rows().outcomes(frame, result_format="COMPLETE"):
        lines = outcome.result.get("unexpected_index_list")
        if not outcome.success and not lines:
            raise RuntimeError(
                f"{outcome.expectation_config.type} on {outcome.expectation_config.kwargs} "
                f"could not run: {outcome.exception_info}"
            )
        meta = outcome.expectation_config.meta
        for line in lines or ():
            found.setdefault(int(line), {}).setdefault(meta["field"], meta["reason"])
    pa.default_memory_pool().release_unused()
    return found


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _parse(values: Mapping[str, Any], tenant: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Canonical values of a row and the problems found before GX: the tenant, the time, the
    properties."""
    problems: dict[str, str] = {}
    row: dict[str, Any] = {name: _text(values.get(name)) for name in FIELDS}
    moment = values.get("occurred_at")
    parsed: datetime | None = None
    if isinstance(moment, datetime):
        parsed = moment
    elif isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            problems["occurred_at"] = f"occurred_at {excerpt(moment)!r} is not an ISO 8601 time"
    elif moment is not None:
        problems["occurred_at"] = "occurred_at is not an ISO 8601 time"
    if parsed is not None and parsed.tzinfo is None:
        problems["occurred_at"] = "occurred_at has no timezone"
        parsed = None
    row["occurred_at"] = parsed
    if row["tenant"] != tenant:
        problems["tenant"] = f"event of tenant {row['tenant']!r} in a file for {tenant!r}"
    properties = values.get("properties") or {}
    if not isinstance(properties, dict):
        problems["properties"] = "properties must be a JSON object"
        properties = {}
    row["properties"] = properties
    row["properties_size"] = len(json.dumps(properties, default=str)) if properties else 0
    return row, problems


def _jsonl_rows(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | str]]:
    """(line, raw text, values or the reason it is not an object), lazily."""
    with path.open("rb") as stream:
        for number, data in enumerate(stream, start=1):
            if len(data) > MAX_LINE_BYTES:
                yield number, data[:200].decode("utf-8", "replace"), "line is too long"
                continue
            text = data.decode("utf-8", "replace")
            if not text.strip():
                continue
            try:
                values = json.loads(text)
            except json.JSONDecodeError as error:
                yield number, text, f"not valid JSON: {error.msg}"
                continue
            yield number, text, values if isinstance(values, dict) else "not a JSON object"


def _parquet_rows(path: Path, chunk_size: int) -> Iterator[tuple[int, str, dict[str, Any] | str]]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise EventFileError(f"{path}: not a readable Parquet file ({error})") from error
    number = 0
    for batch in parquet.iter_batches(batch_size=chunk_size):
        for values in batch.to_pylist():
            number += 1
            if isinstance(values.get("properties"), str):
                try:
                    values["properties"] = json.loads(values["properties"])
                except json.JSONDecodeError:
                    values["properties"] = values["properties"]
            yield number, json.dumps(values, default=str), values


def read_events(
    path: str | Path,
    tenant: str,
    chunk_size: int = 20_000,
    file_format: str | None = None,
    now: datetime | None = None,
) -> Iterator[EventChunk]:
    """Stream an event file as checked chunks of at most `chunk_size` rows."""
    check_tenant(tenant)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, not {chunk_size}")
    path = Path(path)
    name = (file_format or FORMATS.get(path.suffix.lower(), "")).lower().lstrip(".")
    if name not in ("jsonl", "parquet"):
        raise EventFileError(f"{path}: unknown format; event files are jsonl or parquet")
    if not path.is_file():
        raise EventFileError(f"{path}: no such file")
    rows = _jsonl_rows(path) if name == "jsonl" else _parquet_rows(path, chunk_size)
    while True:
        chunk = _check(islice(rows, chunk_size), tenant, str(path), now or datetime.now(UTC))
        if not chunk.rows_read:
            return
        yield chunk


def _check(
    rows: Iterable[tuple[int, str, dict[str, Any] | str]], tenant: str, source: str, now: datetime
) -> EventChunk:
    raws: dict[int, str] = {}
    problems: dict[int, dict[str, str]] = {}
    parsed: dict[int, dict[str, Any]] = {}
    for line, raw, values in rows:
        raws[line] = raw
        if isinstance(values, str):
            problems[line] = {"line": values}
            continue
        parsed[line], issues = _parse(values, tenant)
        if issues:
            problems[line] = issues
    checkable = {line: row for line, row in parsed.items() if line not in problems}
    if checkable:
        for line, reasons in failures(event_frame(checkable, now)).items():
            problems.setdefault(line, {}).update(reasons)
    events = [
        StorefrontEvent(
            event_id=row["event_id"],
            tenant=tenant,
            occurred_at=row["occurred_at"].astimezone(UTC),
            event_type=row["event_type"],
            user_id=row["user_id"],
            session_id=row["session_id"],
            sku=row["sku"],
            properties=row["properties"],
        )
        for line, row in checkable.items()
        if line not in problems
    ]
    rejects = [
        Reject(
            tenant=tenant,
            source=source,
            line=line,
            fields=list(reasons),
            reason="; ".join(reasons.values()),
            raw=excerpt(raws[line]),
        )
        for line, reasons in sorted(problems.items())
    ]
    return EventChunk(source=source, rows_read=len(raws), events=events, rejects=rejects)


def write_events_file(path: str | Path, events: Iterable[Mapping[str, Any]]) -> int:
    """Write events (dicts in the file format) as JSONL or Parquet, streaming; returns count."""
    path = Path(path)
    name = FORMATS.get(path.suffix.lower())
    written = 0
    if name == "jsonl":
        with path.open("w", encoding="utf-8") as out:
            for event in events:
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
                written += 1
        return written
    if name != "parquet":
        raise EventFileError(f"{path}: unknown format; event files are jsonl or parquet")
    writer: pq.ParquetWriter | None = None
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal writer
        table = pa.Table.from_pylist(
            [{**e, "properties": json.dumps(e.get("properties") or {})} for e in batch],
            schema=PARQUET_SCHEMA,
        )
        writer = writer or pq.ParquetWriter(path, PARQUET_SCHEMA)
        writer.write_table(table)
        batch.clear()

    for event in events:
        batch.append(dict(event))
        written += 1
        if len(batch) >= 50_000:
            flush()
    if batch:
        flush()
    if writer:
        writer.close()
    return written
