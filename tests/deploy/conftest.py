"""``deploy_tools``: Helm and KEDA's CRD, built by ``make tools`` (``make test`` builds them
beside the other tests; these tests run last and wait for that build)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
BUILD_TIMEOUT = 20 * 60.0


@dataclass(frozen=True)
class DeployTools:
    helm: Path
    keda_crd: Path


@pytest.fixture(scope="session")
def deploy_tools() -> DeployTools:
    """The built tools; waits for a build ``make test`` started, fails with its log."""
    tools = DeployTools(TOOLS / "bin" / "helm", TOOLS / "crds" / "keda.sh_scaledobjects.yaml")
    started, result = TOOLS / "build.started", TOOLS / "build.rc"
    deadline = time.monotonic() + BUILD_TIMEOUT
    while not (tools.helm.is_file() and tools.keda_crd.is_file()):
        if result.is_file() or not started.is_file():
            log = TOOLS / "build.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            pytest.fail(
                f"Helm and KEDA's CRD are not built: run `make tools` (it needs Go and the "
                f"Go module proxy). {tail}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            pytest.fail(f"`make tools` did not finish within {BUILD_TIMEOUT:.0f}s", pytrace=False)
        time.sleep(1.0)  # polling a build in another process, with a deadline
    return tools
