from importlib.metadata import version

import packflow


def test_version_comes_from_installed_distribution_metadata() -> None:
    assert packflow.__version__ == version("packflow")
