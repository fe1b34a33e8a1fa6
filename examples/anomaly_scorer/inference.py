"""Anomaly scorer: flags machine sensor readings that sit far from healthy behaviour.

Each record carries four numeric readings (see ``params.json``). The backend standardises
them with the per-feature mean and standard deviation fitted on healthy data
(``fit_params.py``), scores each record by its largest absolute z-score and flags it as an
anomaly when that score reaches ``threshold``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from packflow import BackendConfig, InferenceBackend

HERE = Path(__file__).resolve().parent


class AnomalyScorerConfig(BackendConfig):
    """Settings of the anomaly scorer (set them under ``backend_config`` in packflow.yaml)."""

    params_file: str = "params.json"
    """Parameter file written by ``fit_params.py``; relative paths start at this folder."""

    threshold: float = 4.0
    """A record whose largest absolute z-score reaches this value is an anomaly."""

    id_field: str | None = "id"
    """Field copied from each input record to its output (when present), to match them up."""


class InvalidRecordError(ValueError):
    """A record cannot be scored: a feature is missing or is not a finite number."""


class AnomalyScorer(InferenceBackend):
    """Scores records of sensor readings with per-feature z-scores."""

    backend_config_model = AnomalyScorerConfig

    def initialize(self) -> None:
        """Load the fitted means and standard deviations from the parameter file."""
        config: AnomalyScorerConfig = self.config  # type: ignore[assignment]
        path = Path(config.params_file)
        if not path.is_absolute():
            path = HERE / path
        try:
            params = json.loads(path.read_text())
            self.features: list[str] = [str(f) for f in params["features"]]
            self.mean = np.asarray(params["mean"], dtype=np.float64)
            self.std = np.asarray(params["std"], dtype=np.float64)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"cannot load parameters from {path}: {exc!r}") from exc
        n = len(self.features)
        if self.mean.shape != (n,) or self.std.shape != (n,) or np.any(self.std <= 0):
            raise RuntimeError(
                f"bad parameters in {path}: need {n} means and {n} positive stds "
                f"for features {self.features}"
            )
        self.threshold = config.threshold
        self.id_field = config.id_field

    def execute(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Score each record; raise :class:`InvalidRecordError` naming the first bad one."""
        readings = self._readings(inputs)
        z = (readings - self.mean) / self.std
        scores = np.abs(z).max(axis=1) if len(inputs) else np.empty(0)
        top = np.abs(z).argmax(axis=1) if len(inputs) else np.empty(0, dtype=np.intp)
        outputs = []
        for i, record in enumerate(inputs):
            score = float(scores[i])
            out: dict[str, Any] = {}
            if self.id_field is not None and self.id_field in record:
                out[self.id_field] = record[self.id_field]
            out["anomaly_score"] = round(score, 4)
            out["is_anomaly"] = score >= self.threshold
            out["top_feature"] = self.features[int(top[i])]
            out["z_scores"] = {
                f: round(float(v), 3) for f, v in zip(self.features, z[i], strict=True)
            }
            outputs.append(out)
        return outputs

    def _readings(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Collect the features of ``records`` into a float matrix, checking every value."""
        matrix = np.empty((len(records), len(self.features)), dtype=np.float64)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise InvalidRecordError(
                    f"record {i}: expected a JSON object, got {type(record).__name__}"
                )
            for j, feature in enumerate(self.features):
                if feature not in record:
                    raise InvalidRecordError(
                        f"record {i}: missing feature {feature!r} "
                        f"(expected features: {', '.join(self.features)})"
                    )
                value = record[feature]
                # bool is an int subclass in Python, but true/false is not a reading.
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InvalidRecordError(
                        f"record {i}: feature {feature!r} must be a number, "
                        f"got {type(value).__name__} {value!r:.40}"
                    )
                try:
                    number = float(value)
                except OverflowError:
                    number = math.inf
                if not math.isfinite(number):
                    raise InvalidRecordError(
                        f"record {i}: feature {feature!r} must be a finite number, "
                        f"got {value!r:.40}"
                    )
                matrix[i, j] = number
        return matrix
