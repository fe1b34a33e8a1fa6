"""``python -m packflow``: the ``packflow`` command."""

from packflow.cli import cli

if __name__ == "__main__":
    cli(prog_name="packflow")
