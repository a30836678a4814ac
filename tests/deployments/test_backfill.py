"""`backfill` on the stack's real Prefect server: its partitions are runs of the deployments
that `polyflow serve` serves (`rollup-analytics/partition`, `replay-analytics/partition`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from domain.analytics import BackfillError
from domain.settings import settings
from flows.backfill import BACKFILL_DEPLOYMENT, check_request
from stores import cassandra, postgres
from tests.analytics_helpers import EXPECTED_HOURS, known_day, seed_known_day


@pytest.fixture(scope="module")
def api(stores: None) -> str:
    url = settings().prefect_api_url.rstrip("/")
    try:
        response = httpx.get(f"{url}/deployments/name/{BACKFILL_DEPLOYMENT}", timeout=5)
    except httpx.HTTPError as error:
        pytest.fail(f"Prefect server not reachable at {url} ({error})", pytrace=False)
    if response.status_code != httpx.codes.OK:
        pytest.fail("backfill/api is not served; restart: polyflow stack up --only flows")
    return url


def children(flow_name: str, tenant: str) -> list[FlowRun]:
    tag = f"backfill:{flow_name}:{tenant}"
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))
        )


def most_at_once(runs: list[FlowRun]) -> int:
    edges = []
    for run in runs:
        if run.start_time and run.end_time:
            edges += [(run.start_time, 1), (run.end_time, -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += step
        peak = max(peak, running)
    return peak


def start_backfill(flow_name: str, tenant: str, days_ago: tuple[int, int], **options):
    today = datetime.now(UTC).date()
    timeout = options.pop("timeout", None)
    parameters = {
        "flow_name": flow_name,
        "tenant": tenant,
        "start": (today - timedelta(days=days_ago[0])).isoformat(),
        "end": (today - timedelta(days=days_ago[1])).isoformat(),
        **options,
    }
    return run_deployment(BACKFILL_DEPLOYMENT, parameters=parameters, timeout=timeout)


def statuses(flow_name: str, tenant: str) -> dict[str, str]:
    return {k: s.status for k, s in postgres.partition_statuses(flow_name, tenant).items()}


def test_bad_requests_are_refused() -> None:
    today = datetime.now(UTC).date()
    with pytest.raises(BackfillError, match="reversed"):
        check_request("rollup-analytics", today, today - timedelta(days=1), "day")
    with pytest.raises(BackfillError, match="unknown flow 'reindex'"):
        check_request("reindex", today, today, "day")
    with pytest.raises(BackfillError, match="does not support 'hour'"):
        check_request("replay-analytics", today, today, "hour")
    with pytest.raises(BackfillError, match="future"):
        check_request("rollup-analytics", today, today + timedelta(days=1), "day")
    with pytest.raises(BackfillError, match="does not support 'week'"):
        check_request("rollup-analytics", today, today, "week")
    assert len(check_request("rollup-analytics", today, today, "hour")) == 24


def test_backfill_bounds_concurrency_and_skips_done_partitions(api: str, tenant: str) -> None:
    day = known_day(3)
    seed_known_day(tenant, day)
    run = start_backfill("rollup-analytics", tenant, (5, 3), max_concurrent=2)
    assert run.state.is_completed(), run.state
    done = statuses("rollup-analytics", tenant)
    assert list(done.values()) == ["completed"] * 3
    runs = children("rollup-analytics", tenant)
    assert len(runs) == 3 and all(r.state.is_completed() for r in runs)
    assert 1 <= most_at_once(runs) <= 2
    assert cassandra.hourly_rows(tenant, day.date()) == EXPECTED_HOURS

    again = start_backfill("rollup-analytics", tenant, (5, 3), max_concurrent=2)
    assert again.state.is_completed()
    assert len(children("rollup-analytics", tenant)) == 3


def test_cancelled_backfill_resumes_with_what_is_left(api: str, tenant: str) -> None:
    run = start_backfill("replay-analytics", tenant, (6, 4), max_concurrent=1, timeout=0)
    deadline = time.monotonic() + 120
    while "completed" not in statuses("replay-analytics", tenant).values():
        assert time.monotonic() < deadline, "no partition completed within 2 minutes"
        time.sleep(1)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Cancelling(), force=True)
        while not client.read_flow_run(run.id).state.is_final():
            assert time.monotonic() < deadline + 60
            time.sleep(1)
    left = [k for k, s in statuses("replay-analytics", tenant).items() if s != "completed"]
    assert len(statuses("replay-analytics", tenant)) < 3 or left

    resumed = start_backfill("replay-analytics", tenant, (6, 4), max_concurrent=1)
    assert resumed.state.is_completed(), resumed.state
    assert list(statuses("replay-analytics", tenant).values()) == ["completed"] * 3
    completed = [r.name for r in children("replay-analytics", tenant) if r.state.is_completed()]
    assert sorted(completed) == sorted(set(completed)) and len(completed) == 3
