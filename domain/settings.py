"""Configuration from the environment (`POLYFLOW_*`), with defaults that point at the local stack.

Each store has exactly one URL. URLs can carry credentials, so they are `SecretStr`: they never
appear in logs, reprs or tracebacks; `public_address` gives the part that is safe to show.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything polyflow reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="POLYFLOW_", env_file=".env", extra="ignore")

    postgres_url: SecretStr = SecretStr(
        "postgresql+psycopg://polyflow:polyflow@127.0.0.1:5432/polyflow"
    )
    mongodb_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/polyflow")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    cassandra_url: SecretStr = SecretStr("cassandra://127.0.0.1:9042/polyflow")
    elasticsearch_url: SecretStr = SecretStr("http://127.0.0.1:9200")
    neo4j_url: SecretStr = SecretStr("bolt://127.0.0.1:7687")
    prefect_api_url: str = Field(
        "http://127.0.0.1:4200/api", description="the Prefect server that runs the deployments"
    )

    connect_timeout: float = Field(3.0, gt=0, description="seconds before a store counts as down")
    stack_dir: Path = Field(PROJECT_ROOT / ".stack", description="data and logs of the stack")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "polyflow", description="downloads and builds, outside the repo"
    )


@cache
def settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def public_address(url: SecretStr) -> str:
    """`host:port` of a store URL: what an operator may see without leaking credentials."""
    parts = urlsplit(url.get_secret_value())
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
