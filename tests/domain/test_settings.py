from __future__ import annotations

import pytest
from pydantic import SecretStr

from domain.settings import Settings, public_address


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYFLOW_REDIS_URL", "redis://:s3cret@10.0.0.5:6380/2")
    monkeypatch.setenv("POLYFLOW_CONNECT_TIMEOUT", "1.5")

    config = Settings()

    assert config.redis_url.get_secret_value() == "redis://:s3cret@10.0.0.5:6380/2"
    assert config.connect_timeout == 1.5


def test_urls_with_credentials_are_never_shown() -> None:
    config = Settings(postgres_url=SecretStr("postgresql+psycopg://app:hunter2@db:5432/x"))

    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.model_dump())
    assert public_address(config.postgres_url) == "db:5432"
