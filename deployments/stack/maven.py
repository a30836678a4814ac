"""Fetch Java servers from Maven Central into the download cache, once per pinned version."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from deployments.stack.base import StackError

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def _mvn(args: list[str], repo: Path, what: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(f"{what}: Maven (mvn) is not installed; run 'make setup'")
    result = subprocess.run(
        [mvn, "-B", "-q", f"-Dmaven.repo.local={repo}", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise StackError(f"{what}: Maven could not fetch it:\n{tail}")


def copy_dependencies(pom: Path, dest: Path, cache: Path, what: str) -> Path:
    """Resolve the runtime dependencies of `pom` into `dest`/lib; return that folder."""
    lib = dest / "lib"
    done = dest / ".complete"
    if done.exists():
        return lib
    lib.mkdir(parents=True, exist_ok=True)
    _mvn(
        [
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ],
        cache / "m2",
        what,
    )
    done.touch()
    return lib


def copy_artifact(coordinates: str, dest: Path, cache: Path, what: str) -> Path:
    """Copy one artifact (`group:artifact:version[:type]`) into `dest`; return its path."""
    done = dest / ".complete"
    if not done.exists():
        dest.mkdir(parents=True, exist_ok=True)
        _mvn(
            [f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={coordinates}", f"-DoutputDirectory={dest}"],
            cache / "m2",
            what,
        )
        done.touch()
    files = [p for p in dest.iterdir() if p.name != ".complete"]
    if len(files) != 1:
        raise StackError(f"{what}: expected one file in {dest}, found {len(files)}")
    return files[0]
