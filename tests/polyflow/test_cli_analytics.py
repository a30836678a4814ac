"""`polyflow events | analytics | backfill` as an operator runs them, against the real stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.helpers import run_cli


def cli(*args: str):
    """`polyflow` with room for a busy machine: every command here starts a new Python."""
    return run_cli(*args, timeout=180)


def test_generated_traffic_is_deterministic(tmp_path: Path) -> None:
    files = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for file in files:
        made = cli(
            "events", "generate", str(file), "--tenant", "acme", "--events", "50",
            "--day", "2026-11-01", "--seed", "4",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    assert files[0].read_text() == files[1].read_text()
    assert len(files[0].read_text().splitlines()) == 50


def test_events_ingested_rolled_up_and_shown(tenant: str, tmp_path: Path) -> None:
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    file = tmp_path / "events.jsonl"
    made = cli("events", "generate", str(file), "--tenant", tenant, "--events", "300", "--day", day)
    assert made.returncode == 0, made.stderr
    ingested = cli("events", "ingest", str(file), "--tenant", tenant)
    assert ingested.returncode == 0, ingested.stderr
    assert "300 rows: 300 stored, 0 rejected" in ingested.stdout
    rolled = cli("analytics", "rollup", "--tenant", tenant, "--day", day)
    assert rolled.returncode == 0, rolled.stderr
    assert "rolled up 24 hours" in rolled.stdout
    shown = cli("analytics", "show", "--tenant", tenant, "--day", day)
    assert shown.returncode == 0, shown.stderr
    assert "views" in shown.stdout and "customers" in shown.stdout and "day" in shown.stdout


def test_backfill_refuses_bad_requests_with_usage_errors(tenant: str) -> None:
    today = datetime.now(UTC).date()
    reversed_range = cli(
        "backfill", "run", "rollup-analytics", "--tenant", tenant,
        "--start", str(today), "--end", str(today - timedelta(days=2)),
    )  # fmt: skip
    assert reversed_range.returncode == 2 and "reversed" in reversed_range.stdout
    unknown = cli(
        "backfill", "run", "reindex", "--tenant", tenant, "--start", str(today), "--end", str(today)
    )
    assert unknown.returncode == 2 and "unknown flow 'reindex'" in unknown.stdout
    future = cli(
        "backfill", "run", "rollup-analytics", "--tenant", tenant,
        "--start", str(today), "--end", str(today + timedelta(days=3)),
    )  # fmt: skip
    assert future.returncode == 2 and "future" in future.stdout
    status = cli("backfill", "status", "rollup-analytics", "--tenant", tenant)
    assert status.returncode == 0 and "backfill partitions of rollup-analytics" in status.stdout
