"""The SDK stands alone: it imports without the worker's Kafka dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

WORKER_ONLY = ("aiokafka", "pydantic_settings")


def test_every_packflow_module_imports_with_the_workers_dependencies_blocked() -> None:
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys

        blocked = {WORKER_ONLY!r}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError(f"{{name}} is blocked for this test")
                return None

        sys.meta_path.insert(0, Block())
        import packflow

        names = [m.name for m in pkgutil.walk_packages(packflow.__path__, "packflow.")]
        for name in names:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
        assert not leaked, leaked
        print(len(names))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 20  # the walk found the SDK's modules
