"""(Re)fit the anomaly scorer's parameters from generated sensor readings.

The example ships ``params.json`` so that it works out of the box; this script is how that
file was made. It simulates healthy machine readings with a fixed seed, estimates each
feature's mean and standard deviation, and writes them as JSON::

    python fit_params.py                      # rewrite params.json next to this file
    python fit_params.py --samples 50000 --seed 1 --out /tmp/params.json

To fit on real data instead, build a 2-D array (one row per reading, one column per entry
of ``FEATURES``) and pass it to :func:`fit`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

#: Feature names in column order, with the (mean, std) of the simulated healthy machine.
HEALTHY_MACHINE: dict[str, tuple[float, float]] = {
    "temperature_c": (65.0, 4.0),
    "pressure_kpa": (310.0, 12.0),
    "vibration_mm_s": (2.5, 0.6),
    "current_a": (12.0, 1.5),
}
FEATURES: list[str] = list(HEALTHY_MACHINE)
DEFAULT_SAMPLES = 10_000
DEFAULT_SEED = 7
PARAMS_FILE = Path(__file__).with_name("params.json")


def generate(samples: int, seed: int) -> np.ndarray:
    """Simulate ``samples`` healthy readings: a ``(samples, len(FEATURES))`` float array."""
    rng = np.random.default_rng(seed)
    means = np.array([m for m, _ in HEALTHY_MACHINE.values()])
    stds = np.array([s for _, s in HEALTHY_MACHINE.values()])
    return rng.normal(means, stds, size=(samples, len(FEATURES)))


def fit(readings: np.ndarray, features: list[str]) -> dict[str, Any]:
    """Estimate per-feature mean and standard deviation from ``readings``."""
    if readings.ndim != 2 or readings.shape[1] != len(features):
        raise ValueError(
            f"readings must have shape (n, {len(features)}) for features {features}, "
            f"got {readings.shape}"
        )
    if readings.shape[0] < 2:
        raise ValueError(f"need at least 2 readings to estimate a std, got {readings.shape[0]}")
    std = readings.std(axis=0, ddof=1)
    if np.any(std <= 0):
        flat = [f for f, s in zip(features, std, strict=True) if s <= 0]
        raise ValueError(f"features {flat} are constant in the data: std would be 0")
    return {
        "features": features,
        "mean": [round(float(v), 6) for v in readings.mean(axis=0)],
        "std": [round(float(v), 6) for v in std],
        "n_samples": int(readings.shape[0]),
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: generate, fit and write the parameter file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=PARAMS_FILE)
    args = parser.parse_args(argv)
    params = fit(generate(args.samples, args.seed), FEATURES)
    params["seed"] = args.seed
    args.out.write_text(json.dumps(params, indent=2) + "\n")
    print(f"wrote {args.out} ({params['n_samples']} samples, seed {args.seed})")


if __name__ == "__main__":
    main()
