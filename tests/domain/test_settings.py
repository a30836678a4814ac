from __future__ import annotations

import traceback
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from domain.settings import Settings, SettingsError, override, public_address, settings

PASSWORD = "Kq7@Zx9/Wm4#Vt2%Rb8"  # noqa: S105 (a test value)
"""URL-special characters between distinctive pieces: none of the pieces may show anywhere."""
PIECES = ("Kq7", "Zx9", "Wm4", "Vt2", "Rb8")


def shown(value: object) -> str:
    return f"{value!r} {value!s}"


def assert_hidden(text: str) -> None:
    assert not [piece for piece in PIECES if piece in text], text


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYFLOW_REDIS_URL", "redis://:s3cret@10.0.0.5:6380/2")
    monkeypatch.setenv("POLYFLOW_CONNECT_TIMEOUT", "1.5")

    config = Settings()

    assert config.redis_url.hosts == [("10.0.0.5", 6380)]
    assert config.redis_url.credentials == ("", "s3cret")
    assert config.redis_url.database == "2"
    assert config.connect_timeout == 1.5


def test_the_defaults_point_at_the_local_stack() -> None:
    config = Settings()

    assert [config.store_url(store).public_address for store in ("postgres", "neo4j")] == [
        "127.0.0.1:5432",
        "127.0.0.1:7687",
    ]
    assert config.postgres_url.credentials == ("polyflow", "polyflow")
    assert config.postgres_url.database == "polyflow"
    assert config.cassandra_url.keyspace == "polyflow"


def test_urls_are_parsed_into_their_parts() -> None:
    config = Settings(
        mongodb_url="mongodb://app:pw@m1,m2:27018/catalog?replicaSet=rs0",
        cassandra_url="cassandra://c1,c2:9043,c3/shop?replication_factor=3",
        neo4j_url="neo4j://graph:s3cret@g1:7688",
        elasticsearch_url="https://search:9243",
    )

    assert config.mongodb_url.hosts == [("m1", 27017), ("m2", 27018)]
    assert config.mongodb_url.database == "catalog"
    assert config.mongodb_url.options == {"replicaSet": "rs0"}
    assert config.cassandra_url.hosts == [("c1", 9042), ("c2", 9043), ("c3", 9042)]
    assert (config.cassandra_url.keyspace, config.cassandra_url.replication_factor) == ("shop", 3)
    assert config.cassandra_url.public_address == "c1:9042,c2:9043,c3:9042"
    assert config.neo4j_url.credentials == ("graph", "s3cret")
    assert config.neo4j_url.driver_uri() == "neo4j://g1:7688"
    assert config.elasticsearch_url.hosts == [("search", 9243)]


@pytest.mark.parametrize(
    ("field", "url", "reason"),
    [
        ("postgres_url", "mysql://app@db/x", "URL scheme should be"),
        ("postgres_url", "postgresql+psycopg://db1,db2/x", "exactly one host"),
        ("redis_url", "redis://127.0.0.1:99999/0", "invalid port"),
        ("cassandra_url", "cassandra://c1/Not-A-Keyspace", "keyspace"),
        ("cassandra_url", "cassandra://c1/shop?replication_factor=zero", "replication_factor"),
        ("neo4j_url", "http://g1:7687", "URL scheme should be"),
        ("elasticsearch_url", "127.0.0.1:9200", "not a URL"),
    ],
)
def test_a_bad_url_fails_at_load_naming_the_variable(field: str, url: str, reason: str) -> None:
    with pytest.raises(SettingsError, match=f"POLYFLOW_{field.upper()}: .*{reason}"):
        Settings(**{field: url})


def test_urls_with_credentials_are_never_shown() -> None:
    config = Settings(postgres_url=SecretStr("postgresql+psycopg://app:hunter2@db:5432/x"))

    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config)
    assert "hunter2" not in str(config.model_dump())
    assert "hunter2" not in config.model_dump_json()
    assert "hunter2" not in shown(config.postgres_url)
    assert public_address(config.postgres_url) == "db:5432"


def test_an_encoded_password_with_url_special_characters_is_read_back_exactly() -> None:
    url = f"postgresql+psycopg://app:{quote(PASSWORD, safe='')}@db:5432/x"

    config = Settings(postgres_url=url, neo4j_url=f"bolt://neo4j:{quote(PASSWORD, safe='')}@g:7687")

    assert config.postgres_url.credentials == ("app", PASSWORD)
    assert config.neo4j_url.credentials == ("neo4j", PASSWORD)
    assert config.postgres_url.hosts == [("db", 5432)]
    assert_hidden(shown(config))
    assert_hidden(config.model_dump_json())
    assert_hidden(config.postgres_url.public_address + config.neo4j_url.driver_uri())


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://app:{PASSWORD}@db:5432/x",
        "postgresql+psycopg://app:Kq7@Zx9@db:5432/x",
        "postgresql+psycopg://app:Kq7/Zx9@db:5432/x",
        "postgresql+psycopg://app:Kq7#Zx9@db:5432/x",
        "postgresql+psycopg://app:Kq7%Zx9@db:5432/x",
        "postgresql+psycopg://app:Kq7:Zx9:Wm4@db:99999999/x",
    ],
)
def test_an_unencoded_password_is_refused_without_showing_any_piece_of_it(url: str) -> None:
    """Parsed, `app:Kq7@Zx9/Wm4...` would make 'Zx9' the host: shown in every error after."""
    with pytest.raises(SettingsError) as raised:
        Settings(postgres_url=url)

    error = raised.value
    assert "POLYFLOW_POSTGRES_URL" in str(error)
    assert error.__context__ is None and error.__cause__ is None
    assert_hidden(shown(error))
    assert_hidden("".join(traceback.format_exception(error)))


def test_an_unencoded_password_in_the_environment_is_refused_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLYFLOW_NEO4J_URL", f"bolt://neo4j:{PASSWORD}@g:7687")

    with pytest.raises(SettingsError, match="POLYFLOW_NEO4J_URL") as raised:
        Settings()

    assert_hidden("".join(traceback.format_exception(raised.value)))


def test_override_replaces_fields_for_a_block_and_restores_them() -> None:
    before = settings()

    with override(redis_url="redis://10.0.0.9:6390/1", connect_timeout=0.5) as outer:
        assert settings() is outer
        assert (outer.redis_url.public_address, outer.connect_timeout) == ("10.0.0.9:6390", 0.5)
        assert outer.postgres_url.reveal() == before.postgres_url.reveal()
        with override(connect_timeout=2.0) as inner:
            assert (inner.redis_url.public_address, inner.connect_timeout) == ("10.0.0.9:6390", 2)
        assert settings() is outer

    assert settings() is before


def test_override_validates_like_the_environment_and_names_only_settings() -> None:
    before = settings()

    with (
        pytest.raises(SettingsError, match="POLYFLOW_REDIS_URL") as raised,
        override(redis_url=f"redis://:{PASSWORD}@cache:6379/0"),
    ):
        pass
    assert_hidden(shown(raised.value))
    with (
        pytest.raises(TypeError, match="not a setting: redis"),
        override(redis="redis://cache:6379/0"),
    ):
        pass

    assert settings() is before
