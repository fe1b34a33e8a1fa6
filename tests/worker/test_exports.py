"""The worker package's public names."""

from __future__ import annotations

import worker


def test_all_is_sorted_and_every_name_exists():
    assert worker.__all__ == sorted(worker.__all__)
    for name in worker.__all__:
        assert hasattr(worker, name), name


def test_the_documented_entry_points_are_exported():
    assert {"Worker", "WorkerSettings", "load_settings", "WorkerError"} <= set(worker.__all__)
    from worker.cli import main

    assert callable(main)
