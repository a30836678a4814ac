"""MongoDB's wire protocol from FerretDB v1, built from Go modules and storing data in SQLite.

Why FerretDB: MongoDB itself ships no Debian package and no registry package we can install, while
FerretDB is an Apache-licensed server that speaks the same wire protocol, so pymongo talks to it
unchanged. Why v1 on SQLite: v2 needs PostgreSQL with the DocumentDB extension; v1's SQLite backend
is pure Go (modernc.org/sqlite), so the server depends on no other store of the stack.

Why we build a wrapper (files/ferretdb): `go install .../cmd/ferretdb@v1.24.2` compiles but panics
at start because a generated version file is missing from the published module. The wrapper runs
FerretDB's embeddable package instead, which needs no such file and opens only the MongoDB port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pymongo import MongoClient

from deployments.stack.base import Server, StackError

SOURCE = Path(__file__).parent / "files" / "ferretdb"

# Only the SQLite backend is compiled in; the PostgreSQL one would just add build time and size.
BUILD_FLAGS = ["-mod=readonly", "-buildvcs=false", "-trimpath", "-tags=ferretdb_no_postgresql"]


class FerretDB(Server):
    name = "mongodb"
    title = "MongoDB (FerretDB)"
    version = "1.24.2"
    port = 27017
    ready_timeout = 30.0

    @property
    def binary(self) -> Path:
        return self.paths.downloads(self.name) / self.version / "ferretdb"

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
        self.paths.data(self.name).mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "--listen-addr",
            self.address,
            "--sqlite-dir",
            str(self.paths.data(self.name)),
        ]

    def probe(self) -> str:
        """Run `buildInfo`: only FerretDB answers with `ferretdbVersion`, so a real mongod fails."""
        with MongoClient(
            self.host,
            self.port,
            directConnection=True,
            serverSelectionTimeoutMS=1000,
            connectTimeoutMS=1000,
            socketTimeoutMS=2000,
        ) as client:
            info = client.admin.command("buildInfo")
        ferret = info.get("ferretdbVersion")
        if not ferret:
            raise StackError(f"{self.title}: {self.address} answers, but it is not FerretDB")
        return f"FerretDB {str(ferret).removeprefix('v')} (MongoDB {info['version']} wire)"
