"""PostgreSQL from Debian's packages, as our own cluster under the state folder.

We never touch a system service: `initdb` creates a cluster owned by the `postgres` system user
(PostgreSQL refuses to run as root), listening on 127.0.0.1 only, with its socket in the state
folder. The role, password and database come from `POLYFLOW_POSTGRES_URL`.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import psycopg

from deployments.stack.base import Server, StackError
from domain.settings import settings


def _bin_dir() -> Path:
    """The newest PostgreSQL installed from Debian's packages."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not candidates:
        raise StackError(
            "PostgreSQL: no server binaries under /usr/lib/postgresql; run 'make setup'"
        )
    return candidates[-1].parent


PREFECT_DATABASE = "prefect"
"""The Prefect server's own database, next to polyflow's: SQLite locks up ("database is locked",
503s on create_flow_run) once a few flows and tests write run states at the same time."""


class Postgres(Server):
    name = "postgres"
    title = "PostgreSQL"
    run_as = "postgres"
    ready_timeout = 60.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        url = settings().postgres_url
        self.port = url.hosts[0][1]
        self.role, self.password = url.credentials or ("polyflow", "")
        self.database = url.database or "polyflow"

    @property
    def version(self) -> str:
        """Debian's PostgreSQL major, e.g. "15"; the full version comes from the server itself."""
        return _bin_dir().parts[-2]

    def install(self) -> None:
        _bin_dir()

    def prepare(self) -> None:
        data = self.paths.data(self.name)
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=data.parent, delete=False) as pwfile:
            pwfile.write(self.password)
        self.chown_state()
        try:
            result = subprocess.run(
                [
                    str(_bin_dir() / "initdb"),
                    "--pgdata",
                    str(data),
                    "--username",
                    self.role,
                    "--pwfile",
                    pwfile.name,
                    "--auth",
                    "scram-sha-256",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C.UTF-8",
                ],
                capture_output=True,
                text=True,
                check=False,
                user=self.run_as,
            )
        finally:
            Path(pwfile.name).unlink()
        if result.returncode != 0:
            raise StackError(f"PostgreSQL: initdb failed:\n{result.stdout}{result.stderr}")

    def command(self) -> list[str]:
        return [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.paths.data(self.name)),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.paths.state / self.name}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
            "-c",
            "fsync=on",
        ]

    def _connect(self, database: str) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.role,
            password=self.password,
            dbname=database,
            connect_timeout=2,
            autocommit=True,
        )

    def probe(self) -> str:
        """Answer a real query, creating polyflow's and the Prefect server's databases on the
        first start."""
        with self._connect("postgres") as conn:
            for database in (self.database, PREFECT_DATABASE):
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                ).fetchone()
                if not exists:
                    conn.execute(
                        psycopg.sql.SQL("CREATE DATABASE {}").format(
                            psycopg.sql.Identifier(database)
                        )
                    )
            return conn.execute("SHOW server_version").fetchone()[0]
