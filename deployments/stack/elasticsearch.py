"""Elasticsearch 9 as one single node, from Elastic's integration-test distribution.

Maven Central's metadata for `org.elasticsearch.distribution.integ-test-zip:elasticsearch` stops
at 8.19, but the 9.x zips are there and resolve by explicit version. It is the real distribution,
with `bin/elasticsearch`, the entitlement agent and the native libraries, but only four modules:
transport-netty4, x-pack-core, x-pack-security and apm. So there is no `GET /` (the client's
ping() is False), painless, _reindex, ingest processors, analysis-common (language analyzers,
ngram, ...) or mapper-extras (`scaled_float`, `search_as_you_type`, ...); plain mappings,
queries, aggregations, templates, aliases and bulk all work.

The distribution refuses to run as root, so the node runs as the `polyflow-es` system user. That
user cannot read root's download cache, so the zip is unpacked into the state folder, once per
distribution; the config, which the node reads from ES_PATH_CONF, is rendered at every start.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from string import Template

from elasticsearch import Elasticsearch as ElasticsearchClient

from deployments.stack.base import Server, StackError
from deployments.stack.maven import copy_artifact

FILES = Path(__file__).parent / "files" / "elasticsearch"
JVM_ROOT = Path("/usr/lib/jvm")
MIN_JAVA = 21  # what 9.x requires
HEAP = "1g"
TRANSPORT_PORT = 9300


def _java_feature(home: Path) -> int | None:
    """The feature release (17, 21, 25, ...) of the JDK at `home`, from its `release` file."""
    release = home / "release"
    if not (home / "bin" / "java").exists() or not release.exists():
        return None
    for line in release.read_text().splitlines():
        if line.startswith("JAVA_VERSION="):
            return int(line.split("=", 1)[1].strip('"').split(".")[0])
    return None


def _java_home() -> Path:
    """$ES_JAVA_HOME if set, else the newest JDK 21+ under /usr/lib/jvm, Temurin preferred.

    The distribution's own check would only fail inside the server log; this names the fix.
    """
    if "ES_JAVA_HOME" in os.environ:
        home = Path(os.environ["ES_JAVA_HOME"])
        if (_java_feature(home) or 0) < MIN_JAVA:
            raise StackError(f"Elasticsearch: ES_JAVA_HOME={home} is not a JDK {MIN_JAVA}+")
        return home
    found = {
        home.resolve(): feature
        for home in (JVM_ROOT.iterdir() if JVM_ROOT.is_dir() else [])
        if (feature := _java_feature(home)) is not None and feature >= MIN_JAVA
    }
    if not found:
        raise StackError(
            f"Elasticsearch: 9.x needs Java {MIN_JAVA}+ and there is none under {JVM_ROOT}; "
            f"install one there (e.g. Temurin 25) or set ES_JAVA_HOME"
        )
    return max(found, key=lambda home: ("temurin" in home.name, found[home]))


def _unzip(archive: Path, dest: Path) -> None:
    """Unpack `archive` into `dest`, restoring the file modes zipfile would drop (bin/ scripts)."""
    with zipfile.ZipFile(archive) as zipped:
        for entry in zipped.infolist():
            path = Path(zipped.extract(entry, dest))
            mode = stat.S_IMODE(entry.external_attr >> 16)
            if mode:
                path.chmod(mode)


def _traversable(folder: Path, account: pwd.struct_passwd) -> bool:
    """Whether `account` may pass through `folder` (search permission), by its mode bits."""
    info = folder.stat()
    groups = {account.pw_gid, *os.getgrouplist(account.pw_name, account.pw_gid)}
    if account.pw_uid == 0:
        return True
    if info.st_uid == account.pw_uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


class Elasticsearch(Server):
    """One Elasticsearch 9 node on 127.0.0.1:9200 (transport 9300), security off, 1 GB heap."""

    name = "elasticsearch"
    title = "Elasticsearch"
    version = "9.5.3"  # the Python client is 9.x too
    port = 9200
    run_as = "polyflow-es"

    @property
    def coordinates(self) -> str:
        return f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{self.version}:zip"

    @property
    def folder(self) -> Path:
        return self.paths.state / self.name

    @property
    def home(self) -> Path:
        """The unpacked distribution the node runs from, readable by `run_as`."""
        return self.folder / "home"

    def _archive(self) -> Path:
        """The cached zip, fetched on first use (cheap afterwards)."""
        dest = self.paths.downloads(self.name) / self.version / "dist"
        return copy_artifact(self.coordinates, dest, self.paths.cache, self.title)

    def install(self) -> None:
        self._archive()

    # ---- prepare: user, unpacked home, config ---------------------------------------------------

    def _ensure_user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(self.run_as)
        except KeyError:
            pass
        if os.geteuid() != 0:
            raise StackError(f"Elasticsearch: system user {self.run_as} is missing; run as root")
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                self.run_as,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(self.run_as)

    def _check_traversable(self, account: pwd.struct_passwd) -> None:
        """The state folder's ancestors must let `run_as` through, e.g. not under /root."""
        for folder in [self.paths.state.resolve(), *self.paths.state.resolve().parents]:
            if not _traversable(folder, account):
                raise StackError(
                    f"Elasticsearch runs as {self.run_as}, which cannot enter {folder} "
                    f"(mode {stat.filemode(folder.stat().st_mode)}); put the stack elsewhere "
                    f"with POLYFLOW_STACK_DIR, or chmod o+x {folder}"
                )

    def _unpack_home(self) -> None:
        """Unpack the zip into `home` unless it already holds this distribution.

        Unpacked beside it and renamed, so a half unpack never counts; the BUILD file names the
        artifact, so a change of version (or of distribution) replaces the home.
        """
        marker = self.home / "BUILD"
        if marker.exists() and marker.read_text() == self.coordinates:
            return
        partial = self.folder / "home.partial"
        shutil.rmtree(partial, ignore_errors=True)
        _unzip(self._archive(), partial)
        (top,) = partial.iterdir()  # elasticsearch-<version>/
        (top / "BUILD").write_text(self.coordinates)
        shutil.rmtree(self.home, ignore_errors=True)
        top.rename(self.home)
        partial.rmdir()

    def prepare(self) -> None:
        account = self._ensure_user()
        self.paths.state.mkdir(parents=True, exist_ok=True)
        self._check_traversable(account)
        self._unpack_home()
        for folder in ("logs", "tmp"):
            (self.folder / folder).mkdir(parents=True, exist_ok=True)
        self.paths.data(self.name).mkdir(parents=True, exist_ok=True)
        # The distribution's config with our settings on top. Its log4j2.properties already logs
        # everything to the console (our server.log) besides its files under logs/, and it turns
        # deprecations into response warnings, so it stays. The keystore the node creates there
        # on first start is left alone.
        conf = self.paths.conf(self.name)
        shutil.copytree(self.home / "config", conf, dirs_exist_ok=True)
        settings = Template((FILES / "elasticsearch.yml").read_text()).substitute(
            data=self.paths.data(self.name),
            logs=self.folder / "logs",
            host=self.host,
            http_port=self.port,
            transport_port=TRANSPORT_PORT,
        )
        (conf / "elasticsearch.yml").write_text(settings)

    # ---- run and probe ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        return [str(self.home / "bin" / "elasticsearch")]

    def environment(self) -> dict[str, str]:
        return {
            "ES_JAVA_HOME": str(_java_home()),
            "ES_PATH_CONF": str(self.paths.conf(self.name)),
            # The server CLI adds -XX:+AlwaysPreTouch, which makes the whole heap resident at
            # start: pointless for a local node, and later options win.
            "ES_JAVA_OPTS": f"-Xms{HEAP} -Xmx{HEAP} -XX:-AlwaysPreTouch",
            "ES_TMPDIR": str(self.folder / "tmp"),  # else a fresh folder under /tmp per start
        }

    def probe(self) -> str:
        """Ready means the cluster is at least yellow, not merely that port 9200 accepts.

        No retries: `wait_ready` polls, and a retrying client would hide how soon the node
        really answers.
        """
        with ElasticsearchClient(
            f"http://{self.address}", request_timeout=3.0, max_retries=0
        ) as client:
            health = client.cluster.health(wait_for_status="yellow", timeout="1s")
            if health["timed_out"] or health["status"] == "red":
                raise StackError(f"Elasticsearch: cluster is {health['status']}")
            info = client.nodes.info(node_id="_local", filter_path="nodes.*.version")
        return next(iter(info["nodes"].values()))["version"]
