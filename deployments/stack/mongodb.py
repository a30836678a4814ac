"""MongoDB's wire protocol from FerretDB v1, built from Go modules, storing data in PostgreSQL.

Why FerretDB: MongoDB itself ships no Debian package and no registry package we can install, while
FerretDB is an Apache-licensed server that speaks the same wire protocol, so pymongo talks to it
unchanged. Why v1 on PostgreSQL: v2 needs PostgreSQL's DocumentDB extension, which no registry
ships. v1's SQLite backend pushes only `{_id: value}` down to SQLite, so every other filtered read
or update scans the collection (measured: under 3 upserts/s at 10,000 documents). The PostgreSQL
backend pushes top-level equality down as `@>`, which GIN indexes serve once
files/ferretdb/mirror_indexes.sql adds them next to FerretDB's own: about 550 upserts/s at 50,000.

Why we build a wrapper (files/ferretdb): `go install .../cmd/ferretdb@v1.24.2` compiles but panics
at start because a generated version file is missing from the published module. The wrapper runs
FerretDB's embeddable package instead, which needs no such file and opens only the MongoDB port.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from pymongo import MongoClient

from deployments.stack.base import Server, StackError
from domain.settings import settings

SOURCE = Path(__file__).parent / "files" / "ferretdb"
MIRROR_INDEXES = SOURCE / "mirror_indexes.sql"
BACKEND_DATABASE = "ferretdb"

# Only the PostgreSQL backend is compiled in; the SQLite one would just add build time and size.
BUILD_FLAGS = ["-mod=readonly", "-buildvcs=false", "-trimpath", "-tags=ferretdb_no_sqlite"]


class FerretDB(Server):
    name = "mongodb"
    title = "MongoDB (FerretDB)"
    version = "1.24.2"
    port = 27017
    ready_timeout = 30.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        url = settings().postgres_url
        host, port = url.hosts[0]
        user, password = url.credentials or ("polyflow", "")
        self.backend = {"host": host, "port": port, "user": user, "password": password}

    @property
    def binary(self) -> Path:
        """Named by a digest of the wrapper's sources and flags: changing either rebuilds it."""
        digest = hashlib.sha256(" ".join(BUILD_FLAGS).encode())
        for name in ("main.go", "go.mod", "go.sum"):
            digest.update((SOURCE / name).read_bytes())
        name = f"ferretdb-{digest.hexdigest()[:12]}"
        return self.paths.downloads(self.name) / self.version / name

    def _go(self) -> str:
        go = shutil.which("go") or "/usr/local/go/bin/go"
        if not Path(go).exists():
            raise StackError(f"{self.title}: Go is not installed; it is needed to build FerretDB")
        return go

    def _build_env(self) -> dict[str, str]:
        """Go's caches live in the stack's download cache, outside the repo, and outlive builds."""
        gopath = self.paths.cache / "go"
        return {
            **os.environ,
            "GOPATH": str(gopath),
            "GOMODCACHE": str(gopath / "pkg" / "mod"),
            "GOCACHE": str(gopath / "build"),
            "GOFLAGS": "",  # a developer's own GOFLAGS must not change what we build
            "GOWORK": "off",
            "GOTOOLCHAIN": "local",  # never fetch a toolchain; the installed Go is new enough
            "CGO_ENABLED": "0",  # pure Go: a static binary, no C compiler needed
        }

    def install(self) -> None:
        """Build the wrapper once; a half build is never mistaken for a binary (temp + rename)."""
        if self.binary.exists():
            return
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        partial = self.binary.with_name(f"ferretdb.partial-{os.getpid()}")
        result = subprocess.run(
            [self._go(), "build", *BUILD_FLAGS, "-o", str(partial), "."],
            cwd=SOURCE,
            env=self._build_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise StackError(f"{self.title}: building FerretDB {self.version} failed:\n{tail}")
        partial.replace(self.binary)

    def prepare(self) -> None:
        """Nothing to lay out: FerretDB keeps its data in PostgreSQL, not in files of its own."""

    def command(self) -> list[str]:
        backend = self.backend
        return [
            str(self.binary),
            "--listen-addr",
            self.address,
            "--postgresql-url",
            f"postgres://{quote(backend['user'], safe='')}:{quote(backend['password'], safe='')}"
            f"@{backend['host']}:"
            f"{backend['port']}/{BACKEND_DATABASE}",
        ]

    def _ensure_backend_database(self) -> None:
        """Create FerretDB's PostgreSQL database and its index-mirroring trigger if missing.

        Custom plans for every statement: FerretDB sends the key as a parameter
        (`_jsonb -> $1 @> $2`), and only a plan made for the actual key can use the GIN index.
        """
        with psycopg.connect(
            **self.backend, dbname="postgres", connect_timeout=2, autocommit=True
        ) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (BACKEND_DATABASE,)
            ).fetchone():
                name = sql.Identifier(BACKEND_DATABASE)
                conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
                conn.execute(
                    sql.SQL("ALTER DATABASE {} SET plan_cache_mode = force_custom_plan").format(
                        name
                    )
                )
        with psycopg.connect(
            **self.backend, dbname=BACKEND_DATABASE, connect_timeout=2, autocommit=True
        ) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_event_trigger WHERE evtname = 'polyflow_mirror_gin'"
            ).fetchone():
                conn.execute(MIRROR_INDEXES.read_text())

    def probe(self) -> str:
        """Run `buildInfo` and list collections, which needs the PostgreSQL backend: only FerretDB
        answers with `ferretdbVersion`, so a real mongod fails.
        """
        self._ensure_backend_database()
        with MongoClient(
            self.host,
            self.port,
            directConnection=True,
            serverSelectionTimeoutMS=1000,
            connectTimeoutMS=1000,
            socketTimeoutMS=2000,
        ) as client:
            info = client.admin.command("buildInfo")
            client.polyflow.list_collection_names()
        ferret = info.get("ferretdbVersion")
        if not ferret:
            raise StackError(f"{self.title}: {self.address} answers, but it is not FerretDB")
        return f"FerretDB {str(ferret).removeprefix('v')} (MongoDB {info['version']} wire)"
