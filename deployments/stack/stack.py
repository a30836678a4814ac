"""The whole local stack: the six servers started together, waited on together, stopped together."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil

from deployments.stack.base import Server, StackError, StackPaths
from deployments.stack.cassandra import Cassandra
from deployments.stack.elasticsearch import Elasticsearch
from deployments.stack.mongodb import FerretDB
from deployments.stack.neo4j import Neo4j
from deployments.stack.postgres import Postgres
from deployments.stack.prefect import FlowServer, PrefectServer
from deployments.stack.redis import Redis
from domain.settings import settings

SERVER_TYPES: tuple[type[Server], ...] = (
    Postgres,
    FerretDB,
    Redis,
    Cassandra,
    Elasticsearch,
    Neo4j,
    PrefectServer,
    FlowServer,
)


@dataclass(frozen=True)
class ServerStatus:
    name: str
    title: str
    version: str
    address: str
    pid: int | None
    rss_mb: float | None
    ready: bool
    detail: str


def default_paths() -> StackPaths:
    config = settings()
    return StackPaths(state=config.stack_dir, cache=config.cache_dir)


def servers(paths: StackPaths | None = None, only: list[str] | None = None) -> list[Server]:
    """The stack's servers, optionally just the named ones (in stack order)."""
    paths = paths or default_paths()
    chosen = [server_type(paths) for server_type in SERVER_TYPES]
    if only:
        unknown = set(only) - {server.name for server in chosen}
        if unknown:
            raise StackError(f"unknown server(s): {', '.join(sorted(unknown))}")
        chosen = [server for server in chosen if server.name in only]
    return chosen


def _run_all(action, chosen: list[Server]) -> dict[str, object]:
    """Run `action` on every server concurrently; collect results and errors by server name."""
    with ThreadPoolExecutor(max_workers=len(chosen) or 1) as pool:
        futures = {server.name: pool.submit(action, server) for server in chosen}
    outcomes: dict[str, object] = {}
    for name, future in futures.items():
        try:
            outcomes[name] = future.result()
        except Exception as exc:
            outcomes[name] = exc
    return outcomes


def up(chosen: list[Server]) -> dict[str, str]:
    """Install, start and wait for every server; already running servers are left alone.

    Raises one StackError naming every server that failed, each with its log.
    """
    for server in chosen:
        server.install()

    def start_and_wait(server: Server) -> str:
        server.start()
        return server.wait_ready()

    outcomes: dict[str, object] = {}
    names = {server.name for server in chosen}
    remaining = list(chosen)
    while remaining:
        wave = [s for s in remaining if not set(s.requires) & names - outcomes.keys()]
        outcomes |= _run_all(start_and_wait, wave)
        failures = [str(outcome) for outcome in outcomes.values() if isinstance(outcome, Exception)]
        if failures:
            raise StackError("\n".join(failures))
        remaining = [s for s in remaining if s not in wave]
    return {name: str(version) for name, version in outcomes.items()}


def down(chosen: list[Server]) -> list[str]:
    """Stop the servers this stack started; return the names of those that were running."""
    outcomes = _run_all(lambda server: server.stop(), chosen)
    return [name for name, stopped in outcomes.items() if stopped is True]


def status(chosen: list[Server]) -> list[ServerStatus]:
    """Probe every server once, concurrently, without starting anything."""

    def describe(server: Server) -> ServerStatus:
        process = server.running()
        rss = None
        if process:
            tree = psutil.Process(process.pid)
            rss = sum(p.memory_info().rss for p in [tree, *tree.children(recursive=True)]) / 2**20
        try:
            version, ready, detail = server.probe(), True, ""
        except Exception as exc:
            version, ready, detail = (
                "",
                False,
                str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__,
            )
        return ServerStatus(
            name=server.name,
            title=server.title,
            version=version,
            address=server.address,
            pid=process.pid if process else None,
            rss_mb=rss,
            ready=ready,
            detail=detail if ready or process else "not running",
        )

    outcomes = _run_all(describe, chosen)
    return [outcomes[server.name] for server in chosen]  # type: ignore[misc]
