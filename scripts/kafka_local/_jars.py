"""Resolve the broker jars from Maven Central once and cache them per Kafka version."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ._errors import DownloadError

POM = Path(__file__).with_name("pom.xml")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
MAVEN_TIMEOUT = 600.0
_MARKER = ".complete"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cached_jars(libs_dir: Path) -> bool:
    """Tell whether ``libs_dir`` holds the complete jar set its marker file lists."""
    try:
        listed = (libs_dir / _MARKER).read_text().split()
    except OSError:
        return False
    return bool(listed) and all((libs_dir / name).is_file() for name in listed)


def ensure_jars(
    libs_root: Path,
    version: str,
    *,
    offline: bool = False,
    announce: Callable[[str], None] | None = None,
) -> Path:
    """Return ``libs_root/<version>`` holding the broker's runtime jars.

    The first call runs Maven (``mvn -q -B``) with the repo's ``pom.xml``; later calls
    only check the marker file, so they need no network and no ``mvn``. Concurrent
    callers (two test sessions) serialise on a lock file; the jar set is moved into
    place only once complete.
    """
    libs_dir = libs_root / version
    if cached_jars(libs_dir):
        return libs_dir
    libs_root.mkdir(parents=True, exist_ok=True)
    with _locked(libs_root / f".{version}.lock"):
        if cached_jars(libs_dir):
            return libs_dir
        for leftover in libs_root.glob(f".{version}-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # staging of a killed download
        if announce is not None:
            announce(f"downloading Apache Kafka {version} jars with Maven into {libs_dir}")
        _download(libs_root, libs_dir, version, offline=offline)
    return libs_dir


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download(libs_root: Path, libs_dir: Path, version: str, *, offline: bool) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DownloadError(
            f"Maven (mvn) is needed once to download Apache Kafka {version} into {libs_dir} "
            "but is not on PATH: install Maven 3.8+ (e.g. apt-get install maven)"
        )
    log_path = libs_root / f"mvn-{version}.log"
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=libs_root))
    command = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM)]
    if offline:
        command.append("-o")
    command += [
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
        f"-Dkafka.version={version}",
    ]
    broker_jar = staging / f"kafka_2.13-{version}.jar"
    try:
        with log_path.open("w") as log:
            # One retry rides out a transient network error; offline has nothing to retry.
            for _attempt in range(1 if offline else 2):
                code = _run_maven(command, staging, log)
                if code == 0 and broker_jar.is_file():
                    break
        if code != 0 or not broker_jar.is_file():
            raise DownloadError(
                f"could not download Apache Kafka {version} with Maven "
                f"({_describe_exit(code)}): {_first_error(log_path)}; full log: {log_path}"
            )
        (staging / _MARKER).write_text(
            "\n".join(sorted(p.name for p in staging.glob("*.jar"))) + "\n"
        )
        if libs_dir.exists():
            shutil.rmtree(libs_dir)  # an incomplete set left by a killed run
        os.replace(staging, libs_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _run_maven(command: list[str], cwd: Path, log: IO[str]) -> int | None:
    """Run Maven; return its exit code, or ``None`` when it hung past the timeout."""
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=MAVEN_TIMEOUT,
            check=False,
        ).returncode
    except subprocess.TimeoutExpired:
        log.write(f"[ERROR] Maven did not finish within {MAVEN_TIMEOUT:.0f} s\n")
        log.flush()
        return None


def _describe_exit(code: int | None) -> str:
    return "timed out" if code is None else f"exit {code}"


def _first_error(log_path: Path) -> str:
    for line in log_path.read_text(errors="replace").splitlines():
        text = _ANSI.sub("", line).strip()
        if text.startswith("[ERROR]") and len(text) > len("[ERROR]"):
            return text[len("[ERROR]") :].strip().removesuffix("-> [Help 1]").strip()[:400]
    return "no [ERROR] line in Maven's output"
