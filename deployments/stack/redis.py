"""Redis from Debian's packages, run with our own config under the state folder."""

from __future__ import annotations

import shutil
import subprocess

import redis

from deployments.stack.base import Server, StackError
from domain.settings import settings


class Redis(Server):
    name = "redis"
    title = "Redis"
    ready_timeout = 30.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        url = settings().redis_url
        self.port = url.hosts[0][1]
        self.password = url.credentials[1] if url.credentials else None

    @property
    def version(self) -> str:
        """Debian's redis-server version."""
        server = self._binary()
        out = subprocess.run([server, "--version"], capture_output=True, text=True, check=True)
        return out.stdout.split("v=")[1].split()[0]

    def _binary(self) -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise StackError("Redis: redis-server is not installed; run 'make setup'")
        return server

    def install(self) -> None:
        self._binary()

    def prepare(self) -> None:
        self.paths.data(self.name).mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        argv = [
            self._binary(),
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.paths.data(self.name)),
            "--daemonize",
            "no",
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "yes",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def probe(self) -> str:
        client = redis.Redis(
            host=self.host, port=self.port, password=self.password, socket_timeout=1
        )
        try:
            return client.info("server")["redis_version"]
        finally:
            client.close()
