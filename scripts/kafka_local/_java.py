"""Find a Java runtime (JAVA_HOME first, then PATH) and check its major version."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ._errors import JavaNotFoundError

_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def find_java(min_major: int) -> Path:
    """Return the ``java`` executable to use, or raise ``JavaNotFoundError``.

    ``JAVA_HOME`` wins when set; it must then contain ``bin/java``.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if not os.access(candidate, os.X_OK):
            raise JavaNotFoundError(
                f"JAVA_HOME={java_home} has no bin/java: point JAVA_HOME at a JDK "
                f"{min_major}+ or unset it to use java from PATH"
            )
        java = candidate
    else:
        found = shutil.which("java")
        if found is None:
            raise JavaNotFoundError(
                f"no Java runtime found: install a JDK {min_major}+ "
                "(e.g. apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
            )
        java = Path(found)
    major = java_major_version(java)
    if major < min_major:
        raise JavaNotFoundError(
            f"{java} is Java {major}; this Kafka needs Java {min_major}+ (set JAVA_HOME)"
        )
    return java


def java_major_version(java: Path) -> int:
    """Return the major version printed by ``java -version`` (8 for "1.8.0_x")."""
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise JavaNotFoundError(f"cannot run {java}: {exc}") from exc
    match = _VERSION.search(result.stderr + result.stdout)
    if result.returncode != 0 or match is None:
        raise JavaNotFoundError(f"{java} -version failed (exit {result.returncode})")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major
