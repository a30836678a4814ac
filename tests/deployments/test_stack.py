"""The local stack's lifecycle on the real servers: idempotent up, exact down."""

from __future__ import annotations

import psutil

from deployments.stack import stack
from tests.helpers import run_cli


def test_up_when_everything_runs_starts_nothing(stores: None) -> None:
    servers = stack.servers()
    before = {server.name: server.running() for server in servers}

    versions = stack.up(servers)

    assert all(before.values()), f"not started by this stack: {before}"
    assert {server.name: server.running() for server in servers} == before
    assert set(versions) == set(before)
    assert all(versions.values())


def test_down_stops_exactly_the_server_it_started_and_health_names_it(stores: None) -> None:
    [redis_server] = stack.servers(only=["redis"])
    others = {s.name: s.running() for s in stack.servers() if s.name != "redis"}
    started = redis_server.running()
    assert started is not None
    try:
        assert stack.down([redis_server]) == ["redis"]

        assert not psutil.pid_exists(started.pid) or not started.is_alive()
        assert not redis_server.port_in_use()
        assert {s.name: s.running() for s in stack.servers() if s.name != "redis"} == others
        health = run_cli("health")
        assert health.returncode == 1
        assert "redis" in health.stdout and "NO" in health.stdout
        assert stack.down([redis_server]) == []
    finally:
        stack.up([redis_server])
    assert redis_server.running() is not None
