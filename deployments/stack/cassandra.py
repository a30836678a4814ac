"""Apache Cassandra 5.0 as one loopback-only node, run straight from its Maven Central jars.

There is no tarball to fetch (only package registries are reachable), so we resolve
`cassandra-all` and its runtime dependencies with Maven and start `CassandraDaemon` ourselves
with the JVM options Cassandra's own `bin/cassandra` would pass on Java 17.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from string import Template

from deployments.stack.base import Server, StackError
from deployments.stack.maven import copy_dependencies

FILES = Path(__file__).parent / "files" / "cassandra"

# From Cassandra 5.0's conf/jvm17-server.options: the JDK internals it reaches into (without them
# it fails at start with InaccessibleObjectException) and Netty's direct-buffer settings.
JDK17_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports", "java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports", "java.sql/java.sql=ALL-UNNAMED",
    "--add-exports", "java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports", "jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports", "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports", "jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.io=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]  # fmt: skip

# From conf/jvm-server.options and jvm17-server.options, minus what only pays off on big
# production hosts (-XX:+AlwaysPreTouch would make the whole heap resident at once, -XX:+UseNUMA).
JVM_OPTIONS = [
    "-ea",
    "-da:net.openhft...",
    "-XX:+UseThreadPriorities",
    "-XX:+ExitOnOutOfMemoryError",
    "-Xss256k",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-Xms1G",
    "-Xmx1G",
]

# Dev single-node speed-ups: no waiting for a gossip ring of one to settle, and no blocking flush
# of the system tables after every schema change (tests create and drop keyspaces constantly;
# the commit log still has the change, and SIGTERM drains before exit).
DEV_OPTIONS = [
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.shutdown_announce_in_ms=0",
    "-Dcassandra.unsafesystem=true",
]


class Cassandra(Server):
    """A single Cassandra 5.0 node on 127.0.0.1:9042 (CQL) and :7000 (storage), JMX off."""

    name = "cassandra"
    title = "Cassandra"
    version = "5.0.9"
    port = 9042
    # Ready in 8-11 s warm or on first start (15 s under load); 120 s leaves room for a whole
    # stack starting at once on two cores. A crash is noticed at once anyway.
    ready_timeout = 120.0

    @property
    def home(self) -> Path:
        return self.paths.downloads(self.name) / self.version

    def install(self) -> None:
        copy_dependencies(FILES / "pom.xml", self.home, self.paths.cache, self.title)

    def prepare(self) -> None:
        conf = self.paths.conf(self.name)
        data = self.paths.data(self.name)
        conf.mkdir(parents=True, exist_ok=True)
        for sub in ("data", "commitlog", "saved_caches", "hints", "cdc_raw"):
            (data / sub).mkdir(parents=True, exist_ok=True)
        template = Template((FILES / "cassandra.yaml").read_text())
        (conf / "cassandra.yaml").write_text(template.substitute(data=data))
        shutil.copyfile(FILES / "logback.xml", conf / "logback.xml")

    def command(self) -> list[str]:
        conf = self.paths.conf(self.name)
        lib = self.home / "lib"
        jamm = sorted(lib.glob("jamm-*.jar"))
        state = self.paths.state / self.name
        return [
            *no_memory_lock(),
            java17(),
            *JVM_OPTIONS,
            *JDK17_OPTIONS,
            # Measures on-heap object sizes for memtable accounting, as bin/cassandra does.
            *(f"-javaagent:{jar}" for jar in jamm[:1]),
            f"-Dcassandra.config={(conf / 'cassandra.yaml').as_uri()}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.paths.data(self.name)}",
            f"-Dcassandra.logdir={state}",
            # No cassandra.jmx.local.port / jmxremote.port: JMX stays off and binds nothing.
            *DEV_OPTIONS,
            "-cp",
            f"{conf}{os.pathsep}{lib}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def probe(self) -> str:
        # The driver is heavy: imported only when probing.
        from cassandra.cluster import Cluster
        from cassandra.policies import RoundRobinPolicy

        # A named protocol version and balancing policy: otherwise the driver warns on every
        # probe ("Downgrading core protocol version", "no load_balancing_policy").
        cluster = Cluster(
            [self.host],
            port=self.port,
            connect_timeout=2.0,
            control_connection_timeout=2.0,
            protocol_version=5,
            load_balancing_policy=RoundRobinPolicy(),
        )
        try:
            session = cluster.connect()
            row = session.execute("SELECT release_version FROM system.local", timeout=5.0).one()
            return str(row.release_version)
        finally:
            cluster.shutdown()


def no_memory_lock() -> list[str]:
    """A prefix that keeps Cassandra from pinning its whole heap in RAM with mlockall.

    Cassandra always calls mlockall; as root (CAP_IPC_LOCK) it succeeds, which makes all of
    -Xms resident and unswappable and costs ~5 s of start-up. Without the capability the call
    fails against the default 8 MiB RLIMIT_MEMLOCK: Cassandra logs one warning and carries on.
    Non-root users lack the capability already.
    """
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--inh-caps=-ipc_lock", "--bounding-set=-ipc_lock", "--"]


def java17() -> str:
    """The `java` to run Cassandra with: 5.0 runs on Java 11 and 17 only, and our flags target 17.

    JAVA_HOME may point at another JDK for the other Java servers, so Debian's JDK 17 is also tried.
    """
    home = os.environ.get("JAVA_HOME")
    candidates = [
        str(Path(home) / "bin" / "java") if home else None,
        shutil.which("java"),
        *map(str, sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*/bin/java"))),
    ]
    for java in filter(None, candidates):
        if Path(java).exists() and _major(java) == "17":
            return java
    raise StackError("Cassandra: needs Java 17 and found none; run 'make setup'")


def _major(java: str) -> str | None:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    return match.group(1) if match else None
