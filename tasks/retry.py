"""Which failures are worth a retry: transient ones (a store unreachable, slow or overloaded).

Validation and constraint errors fail at once: retrying them only repeats the same answer later.
"""

from __future__ import annotations

from typing import Any

import cassandra
import cassandra.cluster
import elasticsearch
import neo4j.exceptions
import pymongo.errors
import redis.exceptions
import sqlalchemy.exc
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    sqlalchemy.exc.OperationalError,
    pymongo.errors.AutoReconnect,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    cassandra.cluster.NoHostAvailable,
    cassandra.OperationTimedOut,
    cassandra.Unavailable,
    cassandra.Timeout,
    elasticsearch.ConnectionError,
    elasticsearch.ConnectionTimeout,
    neo4j.exceptions.ServiceUnavailable,
    neo4j.exceptions.SessionExpired,
    neo4j.exceptions.TransientError,
)
TRANSIENT_HTTP_STATUSES = frozenset({429, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    if isinstance(error, elasticsearch.ApiError):
        return error.meta.status in TRANSIENT_HTTP_STATUSES
    return isinstance(error, TRANSIENT_ERRORS)


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry only when the task failed with a transient error."""
    error = state.data
    return isinstance(error, BaseException) and is_transient(error)


TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient,
}
STORE_TASK: dict[str, Any] = {**TRANSIENT_RETRIES, "cache_policy": NO_CACHE}
"""The options of every task that talks to a store: transient-only retries, and no result
cache, since a store's answer is never the same as last time's by construction."""
COMPUTE_TASK: dict[str, Any] = {"cache_policy": NO_CACHE}
"""The options of a task that only computes (a gate's verdict, recommendations from frames): no
retries, since the same inputs give the same answer, and no cache, for the same reason as
`STORE_TASK`."""
