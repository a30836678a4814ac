from __future__ import annotations

import pytest
from cassandra.cluster import NoHostAvailable
from neo4j.exceptions import ConstraintError, ServiceUnavailable
from prefect.states import Failed
from pymongo.errors import DuplicateKeyError, ServerSelectionTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from tasks.retry import is_transient, retry_on_transient


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("no primary"),
        RedisConnectionError("refused"),
        NoHostAvailable("down", {}),
        ServiceUnavailable("down"),
        OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        TimeoutError(),
    ],
)
def test_outages_and_timeouts_are_retried(error: BaseException) -> None:
    assert is_transient(error)
    assert retry_on_transient(None, None, Failed(data=error))


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000"),
        ConstraintError("already exists"),
        IntegrityError("INSERT", {}, Exception("violates check constraint")),
        ValueError("price must be positive"),
    ],
)
def test_validation_and_constraint_errors_fail_at_once(error: BaseException) -> None:
    assert not is_transient(error)
    assert not retry_on_transient(None, None, Failed(data=error))
