"""Test helpers that are not fixtures."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real `polyflow` command in a fresh process; a hang fails the test via the timeout."""
    return subprocess.run(
        [sys.executable, "-m", "polyflow", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        timeout=30,
        check=False,
    )
