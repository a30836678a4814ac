"""How flows behave when a process calls them directly (the CLI, tests, benchmarks).

A flow run called in-process needs no heartbeats: its caller sees a crash itself. Prefect's
heartbeat thread sleeps in one-second steps and every run waits for it on exit, which adds up
to a second to each direct call, so direct calls turn heartbeats off. Runs started by `serve`
or a worker keep them, for Prefect's detection of crashed runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings


@contextmanager
def in_process() -> Iterator[None]:
    """Run the flows called inside this block without heartbeats."""
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield
