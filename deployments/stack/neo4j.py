"""Neo4j 5.26 LTS Community, run from its Maven Central jars: no tarball, no bootloader script.

5.26 is the last line that runs on Java 17 (2025.x needs 21). We resolve `org.neo4j:neo4j` and
its runtime dependencies with Maven, then start `CommunityEntryPoint` ourselves with the JVM flags
the official neo4j.conf passes through `server.jvm.additional`. Bolt only, on loopback, no auth.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from string import Template

from neo4j import GraphDatabase

from deployments.stack.base import Server, StackError
from deployments.stack.maven import copy_dependencies

FILES = Path(__file__).parent / "files" / "neo4j"
JAVA_17 = Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
# Heap may grow to 512 MiB but starts small: -Xms512m alone would keep ~620 MiB resident for an
# empty store, -Xms128m keeps it near 350 MiB.
HEAP_INITIAL = "128m"
HEAP_MAX = "512m"
PAGECACHE = "256m"

# What the official 5.26 neo4j.conf puts in server.jvm.additional, minus -XX:+AlwaysPreTouch
# (it would make the whole heap resident at start, pointless for a small local store).
JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "-XX:FlightRecorderOptions=stackdepth=256",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:+DebugNonSafepoints",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dlog4j.layout.jsonTemplate.maxStringLength=32768",
    "-Dfile.encoding=UTF-8",
]


class Neo4j(Server):
    """Neo4j Community on Bolt 127.0.0.1:7687; home, conf, data and logs all in the state folder."""

    name = "neo4j"
    title = "Neo4j"
    version = "5.26.30"
    port = 7687

    @property
    def home(self) -> Path:
        return self.paths.state / self.name

    @property
    def lib(self) -> Path:
        return self.paths.downloads(self.name) / self.version / "lib"

    def install(self) -> None:
        copy_dependencies(
            FILES / "pom.xml",
            self.paths.downloads(self.name) / self.version,
            self.paths.cache,
            self.title,
        )

    def prepare(self) -> None:
        folders = {key: self.home / key for key in ("data", "logs", "plugins", "import", "run")}
        for folder in [self.paths.conf(self.name), *folders.values()]:
            folder.mkdir(parents=True, exist_ok=True)
        template = Template((FILES / "neo4j.conf").read_text())
        conf = template.substitute(
            data=self.paths.data(self.name),
            logs=folders["logs"],
            plugins=folders["plugins"],
            import_dir=folders["import"],
            run=folders["run"],
            host=self.host,
            port=self.port,
            pagecache=PAGECACHE,
        )
        (self.paths.conf(self.name) / "neo4j.conf").write_text(conf)

    def command(self) -> list[str]:
        java = JAVA_17 if JAVA_17.exists() else shutil.which("java")  # 5.26 wants 17 or 21
        if java is None:
            raise StackError(f"{self.title}: no Java found; install OpenJDK 17 ({JAVA_17})")
        return [
            str(java),
            f"-Xms{HEAP_INITIAL}",
            f"-Xmx{HEAP_MAX}",
            *JVM_FLAGS,
            "-cp",
            f"{self.lib}/*",
            MAIN_CLASS,
            f"--home-dir={self.home}",
            f"--config-dir={self.paths.conf(self.name)}",
            "--console-mode",
        ]

    def probe(self) -> str:
        """Run a real query over Bolt: a listening socket alone is not "ready".

        An auto-commit `session.run`, not `execute_query`, which would retry with back-off for
        up to 30 s and hide how soon the server really answers.
        """
        with (
            GraphDatabase.driver(
                f"bolt://{self.address}",
                auth=None,
                connection_timeout=2.0,
                max_connection_pool_size=1,
            ) as driver,
            driver.session() as session,
        ):
            record = session.run(
                "CALL dbms.components() YIELD name, versions, edition "
                "RETURN versions[0] AS version, edition"
            ).single(strict=True)
        return f"{record['version']} {record['edition']}"
