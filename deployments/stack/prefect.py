"""The Prefect API server and the process that serves polyflow's deployments.

The Prefect server (API + UI) keeps its state in the stack's PostgreSQL (database `prefect`); the
`flows` process runs `polyflow serve`, which registers the deployments and executes their runs:
what a worker does in production, so API-triggered and scheduled runs work on a laptop and in CI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import prefect

from deployments.stack.base import Server, StackError
from deployments.stack.postgres import PREFECT_DATABASE
from domain.settings import PROJECT_ROOT, settings


class PrefectServer(Server):
    name = "prefect"
    title = "Prefect server"
    version = prefect.__version__
    ready_timeout = 120.0
    requires = ("postgres",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.api_url = settings().prefect_api_url.rstrip("/")
        url = urlsplit(self.api_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 4200

    def install(self) -> None:
        """Prefect comes with polyflow's Python dependencies."""

    def prepare(self) -> None:
        self.paths.data(self.name).mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    def environment(self) -> dict[str, str]:
        return {
            "PREFECT_HOME": str(self.paths.data(self.name)),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": self._database_url(),
        }

    @staticmethod
    def _database_url() -> str:
        """The stack's PostgreSQL, database `prefect`, through asyncpg (Prefect's driver). Passed
        in the environment, never on the command line."""
        url = settings().postgres_url
        host, port = url.hosts[0]
        user, password = url.credentials or ("polyflow", "")
        return (
            f"postgresql+asyncpg://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{host}:{port}/{PREFECT_DATABASE}"
        )

    def probe(self) -> str:
        health = httpx.get(f"{self.api_url}/health", timeout=2)
        health.raise_for_status()
        version = httpx.get(f"{self.api_url}/admin/version", timeout=2)
        version.raise_for_status()
        return version.json()


class FlowServer(Server):
    """`polyflow serve`: registers the deployments with the Prefect server and runs them."""

    name = "flows"
    title = "polyflow serve"
    version = prefect.__version__
    ready_timeout = 120.0
    requires = ("prefect",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.api_url = settings().prefect_api_url.rstrip("/")
        self.port = 0

    @property
    def address(self) -> str:
        return f"via {urlsplit(self.api_url).netloc}"

    @property
    def workdir(self) -> Path:
        """Runs import the flows by their entrypoint paths, which are relative to the repo."""
        return PROJECT_ROOT

    def port_in_use(self) -> bool:
        return False

    def install(self) -> None:
        """Nothing to fetch: it runs this checkout's code."""

    def prepare(self) -> None:
        self.paths.data(self.name).mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "polyflow", "serve"]

    def environment(self) -> dict[str, str]:
        return {
            "PREFECT_HOME": str(self.paths.data(self.name)),
            "PREFECT_API_URL": self.api_url,
            # An API-triggered run waits for the runner's next look for work: 10 s by default.
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        }

    def probe(self) -> str:
        """Ready when the Prefect server knows every served deployment."""
        from deployments.serve import DEPLOYMENTS

        missing = [
            f"{flow}/{deployment}"
            for flow, deployment in DEPLOYMENTS
            if httpx.get(
                f"{self.api_url}/deployments/name/{flow}/{deployment}", timeout=2
            ).status_code
            != httpx.codes.OK
        ]
        if missing:
            raise StackError(f"not serving yet: {', '.join(missing)}")
        return f"serving {len(DEPLOYMENTS)} deployments"
