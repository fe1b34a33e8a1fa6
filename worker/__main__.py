"""``python -m worker``: the same as ``packflow-worker``."""

from worker.cli import main

if __name__ == "__main__":
    main()
