"""The local stack's building block: one real server process we install, start, probe and stop.

Each store's server module subclasses `Server` and says only what differs per server: how to
install it into the download cache, how to prepare its state folder, the command line that starts
it and how to tell it is *really* ready. Starting, waiting, pid files and stopping are shared here
so that every server behaves the same way for the operator.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import psutil


class StackError(RuntimeError):
    """A server could not be installed, started or stopped; the message names it and its log."""


@dataclass(frozen=True)
class StackPaths:
    """Where the stack keeps state (data and logs, one folder) and downloads (a cache)."""

    state: Path
    cache: Path

    def data(self, server: str) -> Path:
        return self.state / server / "data"

    def conf(self, server: str) -> Path:
        return self.state / server / "conf"

    def log(self, server: str) -> Path:
        return self.state / server / "server.log"

    def pidfile(self, server: str) -> Path:
        return self.state / server / "server.pid"

    def downloads(self, server: str) -> Path:
        return self.cache / server


@dataclass(frozen=True)
class RunningProcess:
    """What we recorded when we started a server, enough to recognise that exact process later."""

    pid: int
    create_time: float

    def is_alive(self) -> bool:
        try:
            proc = psutil.Process(self.pid)
            return (
                abs(proc.create_time() - self.create_time) < 1.0
                and proc.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


class Server(ABC):
    """One real server of the local stack."""

    name: str  # short id used for folders and the CLI, e.g. "postgres"
    title: str  # what an operator calls it, e.g. "PostgreSQL"
    version: str  # the pinned version we install
    host: str = "127.0.0.1"
    port: int
    ready_timeout: float = 120.0
    run_as: str | None = None  # system user to run as, for servers that refuse root
    requires: tuple[str, ...] = ()  # servers that must be ready before this one starts

    def __init__(self, paths: StackPaths) -> None:
        self.paths = paths

    # ---- what each server says ---------------------------------------------------------------

    @abstractmethod
    def install(self) -> None:
        """Fetch or build the pinned server into the cache. Idempotent and cheap when cached."""

    @abstractmethod
    def prepare(self) -> None:
        """Create config and data folders under the state folder. Idempotent."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""

    def environment(self) -> dict[str, str]:
        """Extra environment variables for the server process."""
        return {}

    @abstractmethod
    def probe(self) -> str:
        """Return the server's own version string if it answers real requests; raise otherwise."""

    # ---- shared lifecycle --------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def workdir(self) -> Path:
        """The server process's working directory."""
        return self.paths.state / self.name

    def recorded(self) -> RunningProcess | None:
        pidfile = self.paths.pidfile(self.name)
        if not pidfile.exists():
            return None
        data = json.loads(pidfile.read_text())
        return RunningProcess(pid=data["pid"], create_time=data["create_time"])

    def running(self) -> RunningProcess | None:
        """The process we started, if it is still alive (a stale pid file does not count)."""
        process = self.recorded()
        return process if process and process.is_alive() else None

    def port_in_use(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            return sock.connect_ex((self.host, self.port)) == 0

    def start(self) -> RunningProcess:
        """Start the server unless the one we started is already running; never waits for ready."""
        process = self.running()
        if process:
            return process
        if self.port_in_use():
            raise StackError(
                f"{self.title}: {self.address} is already taken by a process this stack did not "
                f"start; stop it or point POLYFLOW_STACK_DIR at the stack that owns it"
            )
        self.install()
        self.prepare()
        log = self.paths.log(self.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        if self.run_as:
            self.chown_state()
        with log.open("ab") as out:
            popen = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.environment()},
                cwd=self.workdir,
                start_new_session=True,
                user=self.run_as,
                group=self.run_as and pwd.getpwnam(self.run_as).pw_gid,
                extra_groups=[] if self.run_as else None,
            )
        process = RunningProcess(pid=popen.pid, create_time=psutil.Process(popen.pid).create_time())
        self.paths.pidfile(self.name).write_text(
            json.dumps({"pid": process.pid, "create_time": process.create_time})
        )
        return process

    def wait_ready(self) -> str:
        """Block until `probe` succeeds; fail naming the server and its log when it cannot."""
        deadline = time.monotonic() + self.ready_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.running():
                raise StackError(
                    f"{self.title} exited during start-up; see {self.paths.log(self.name)}"
                )
            try:
                return self.probe()
            except Exception as exc:  # any failure to answer means "not ready yet"
                last_error = exc
            time.sleep(0.5)
        raise StackError(
            f"{self.title} was not ready after {self.ready_timeout:.0f}s ({last_error}); "
            f"see {self.paths.log(self.name)}"
        )

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop exactly the process group we started. Returns whether anything was running."""
        process = self.running()
        self.paths.pidfile(self.name).unlink(missing_ok=True)
        if not process:
            return False
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.is_alive():
            time.sleep(0.2)
        if process.is_alive():
            os.killpg(process.pid, signal.SIGKILL)
        return True

    def chown_state(self) -> None:
        """Hand the state folder to the run-as user (for servers that refuse to run as root)."""
        account = pwd.getpwnam(self.run_as)
        for root, dirs, files in os.walk(self.paths.state / self.name):
            os.chown(root, account.pw_uid, account.pw_gid, follow_symlinks=False)
            for entry in dirs + files:
                path = os.path.join(root, entry)
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
