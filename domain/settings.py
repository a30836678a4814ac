"""Configuration from the environment (`POLYFLOW_*`), with defaults that point at the local stack.

Each store has exactly one URL, and it is typed: pydantic parses and checks it when the settings
load, so a wrong scheme, port or keyspace fails at start naming the variable, not at the first
query. The stores read hosts, ports, credentials and the database from the parsed URL; nobody
splits URL text by hand.

URLs can carry credentials, so each one is a `Secret`: it never appears in a repr, a dump, a log
or a validation error (`SettingsError` carries no input at all). `public_address` gives the part
that is safe to show. A user name or password must be percent-encoded ('@' as %40, '/' as %2F,
'#' as %23, '%' as %25, ':' as %3A). An unencoded one is refused, not guessed at: URL parsers
split such text differently, and a piece of the password would end up shown as a host name.

`override(**fields)` points the process at other values for the length of a block (tests aim a
store at a closed port with it). Store clients are keyed by their URL (`stores.clients`), so
they follow the override and come back to the original clients after it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AnyUrl,
    BeforeValidator,
    Field,
    MongoDsn,
    PostgresDsn,
    RedisDsn,
    Secret,
    SecretStr,
    UrlConstraints,
    ValidationError,
)
from pydantic_core import MultiHostUrl
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "POLYFLOW_"
IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,47}")
"""A Cassandra keyspace name as polyflow accepts it (it is spliced into CQL, never bound)."""
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class SettingsError(ValueError):
    """Settings that do not validate: which variables, and why, but never the values given."""


def _unambiguous(value: Any) -> Any:
    """Refuse URL text that parsers could split in more than one way (see the module docstring).

    The messages name the rule, never the text: the text holds the password.
    """
    if isinstance(value, SecretStr | Secret):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    _, separator, rest = value.partition("://")
    if not separator:
        raise ValueError("not a URL: expected scheme://host")
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    if "#" in rest:
        raise ValueError(
            "a store URL has no #fragment; in a user name or password, write '#' as %23"
        )
    if rest.count("@") > 1 or "@" in rest[authority_end:]:
        raise ValueError(
            "ambiguous credentials: percent-encode '@', '/', '?', '#', ':' and '%' in the user "
            "name and password (%40, %2F, %3F, %23, %3A, %25)"
        )
    if _PERCENT.search(rest):
        raise ValueError("a '%' must start a percent-escape; write a literal '%' as %25")
    return value


def _single_host(url: MultiHostUrl) -> MultiHostUrl:
    if len(url.hosts()) != 1:
        raise ValueError("exactly one host expected")
    return url


def _keyspace(url: MultiHostUrl) -> MultiHostUrl:
    keyspace = (url.path or "").strip("/") or "polyflow"
    if not IDENTIFIER.fullmatch(keyspace):
        raise ValueError("the keyspace must be a lower-case identifier of up to 48 characters")
    factor = dict(parse_qsl(url.query or "")).get("replication_factor", "1")
    if not factor.isdigit() or int(factor) < 1:
        raise ValueError("replication_factor must be a positive integer")
    return url


class StoreUrl:
    """A store's parsed URL, kept secret. What the store modules read off it:

    `hosts` (every contact point, default ports filled in), `credentials` (percent-decoded),
    `database` (the path without slashes), `options` (the query) and `reveal()` (the whole URL,
    for a driver that takes one). `public_address` is the only part to show anyone.
    """

    DEFAULT_PORT: ClassVar[int]

    def _display(self) -> str:
        return "**********"

    @property
    def _url(self) -> Any:
        return cast(Secret[Any], self).get_secret_value()  # every StoreUrl is also a Secret

    def _hosts(self) -> list[dict[str, Any]]:
        """pydantic's multi-host URLs list their hosts; the single-host ones have one."""
        url = self._url
        if hasattr(url, "hosts"):
            return url.hosts()
        return [
            {"username": url.username, "password": url.password, "host": url.host, "port": url.port}
        ]

    @property
    def scheme(self) -> str:
        return self._url.scheme

    @property
    def hosts(self) -> list[tuple[str, int]]:
        return [(str(h["host"]), h["port"] or self.DEFAULT_PORT) for h in self._hosts()]

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(user, password), percent-decoded; None when the URL has neither (Redis may have
        only a password: `redis://:password@host`)."""
        first = self._hosts()[0]
        if not first["username"] and not first["password"]:
            return None
        return unquote(first["username"] or ""), unquote(first["password"] or "")

    @property
    def database(self) -> str:
        return unquote((self._url.path or "").strip("/"))

    @property
    def options(self) -> dict[str, str]:
        return dict(parse_qsl(self._url.query or ""))

    @property
    def public_address(self) -> str:
        return ",".join(f"{host}:{port}" for host, port in self.hosts)

    def reveal(self) -> str:
        """The whole URL, credentials included: hand it to a driver, never to a log."""
        return str(self._url)


def _url_type(base: Any, *checks: Any) -> Any:
    return Annotated[base, BeforeValidator(_unambiguous), *(AfterValidator(c) for c in checks)]


class PostgresUrl(StoreUrl, Secret[_url_type(PostgresDsn, _single_host)]):
    DEFAULT_PORT = 5432


class MongoUrl(StoreUrl, Secret[_url_type(MongoDsn)]):
    DEFAULT_PORT = 27017


class RedisUrl(StoreUrl, Secret[_url_type(RedisDsn)]):
    DEFAULT_PORT = 6379


CassandraDsn = Annotated[
    MultiHostUrl, UrlConstraints(allowed_schemes=["cassandra"], host_required=True)
]
"""`cassandra://[user:pass@]host[:port][,host[:port]...]/keyspace[?replication_factor=N]`."""


class CassandraUrl(StoreUrl, Secret[_url_type(CassandraDsn, _keyspace)]):
    DEFAULT_PORT = 9042

    @property
    def keyspace(self) -> str:
        return self.database or "polyflow"

    @property
    def replication_factor(self) -> int:
        return int(self.options.get("replication_factor", "1"))


class ElasticsearchUrl(StoreUrl, Secret[_url_type(AnyHttpUrl)]):
    DEFAULT_PORT = 9200


Neo4jDsn = Annotated[
    AnyUrl,
    UrlConstraints(
        allowed_schemes=["bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"],
        host_required=True,
    ),
]


class Neo4jUrl(StoreUrl, Secret[_url_type(Neo4jDsn)]):
    DEFAULT_PORT = 7687

    def driver_uri(self) -> str:
        """The URL without its credentials (the driver takes those as `auth`)."""
        (host, port), query = self.hosts[0], self._url.query
        return f"{self.scheme}://{host}:{port}" + (f"?{query}" if query else "")


class Settings(BaseSettings):
    """Everything polyflow reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        validate_default=True,
        hide_input_in_errors=True,
    )

    postgres_url: PostgresUrl = Field(
        "postgresql+psycopg://polyflow:polyflow@127.0.0.1:5432/polyflow", validate_default=True
    )
    mongodb_url: MongoUrl = Field("mongodb://127.0.0.1:27017/polyflow", validate_default=True)
    redis_url: RedisUrl = Field("redis://127.0.0.1:6379/0", validate_default=True)
    cassandra_url: CassandraUrl = Field(
        "cassandra://127.0.0.1:9042/polyflow", validate_default=True
    )
    elasticsearch_url: ElasticsearchUrl = Field("http://127.0.0.1:9200", validate_default=True)
    neo4j_url: Neo4jUrl = Field("bolt://127.0.0.1:7687", validate_default=True)
    prefect_api_url: str = Field(
        "http://127.0.0.1:4200/api", description="the Prefect server that runs the deployments"
    )

    connect_timeout: float = Field(3.0, gt=0, description="seconds before a store counts as down")
    call_timeout: float = Field(
        120.0,
        gt=0,
        description="seconds one store call may take: a server that accepts "
        "connections but stops answering fails the call naming the store, never hangs a flow",
    )
    stack_dir: Path = Field(PROJECT_ROOT / ".stack", description="data and logs of the stack")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "polyflow", description="downloads and builds, outside the repo"
    )

    def __init__(self, *args: Any, **values: Any) -> None:
        try:
            super().__init__(*args, **values)
        except ValidationError as exc:
            error = _sanitized(exc)
        else:
            return
        raise error  # outside the except block: the ValidationError (holding input) is not chained

    def store_url(self, store: str) -> StoreUrl:
        """The URL of a store by its name ("postgres", "mongodb", ...)."""
        return getattr(self, f"{store}_url")


def _sanitized(exc: ValidationError) -> SettingsError:
    problems = "; ".join(
        f"{ENV_PREFIX}{'.'.join(map(str, error['loc'])).upper()}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    )
    return SettingsError(f"invalid settings: {problems}")


@cache
def _from_environment() -> Settings:
    return Settings()


_overrides: list[Settings] = []
_overrides_lock = threading.Lock()


def settings() -> Settings:
    """The process-wide settings: the environment's, read once, unless `override` is active."""
    try:
        return _overrides[-1]
    except IndexError:  # no override (checked this way, a block ending meanwhile is no race)
        return _from_environment()


@contextmanager
def override(**fields: Any) -> Iterator[Settings]:
    """Settings with `fields` replaced (validated like the environment's), for one block.

    Process-wide, not per thread, so work a block hands to a thread pool sees them too. Blocks
    nest; leaving one restores what was in force before it.
    """
    unknown = set(fields) - set(Settings.model_fields)
    if unknown:
        raise TypeError(f"not a setting: {', '.join(sorted(unknown))}")
    validated = Settings(**fields)
    replaced = settings().model_copy(update={name: getattr(validated, name) for name in fields})
    with _overrides_lock:
        _overrides.append(replaced)
    try:
        yield replaced
    finally:
        with _overrides_lock:
            position = max(i for i, s in enumerate(_overrides) if s is replaced)
            del _overrides[position]


def public_address(url: StoreUrl | SecretStr) -> str:
    """`host:port` of a store URL (every host, comma-separated): what an operator may see."""
    if isinstance(url, StoreUrl):
        return url.public_address
    parts = urlsplit(url.get_secret_value())
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
