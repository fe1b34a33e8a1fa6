"""The example backend (examples/anomaly_scorer) driven through the SDK, without Kafka."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from packflow.exceptions import (
    InferenceBackendInitializationError,
    InferenceBackendRuntimeError,
)
from packflow.loaders import InferenceBackendLoader

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "anomaly_scorer"
PARAMS = json.loads((PROJECT / "params.json").read_text())


def _load_fit_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anomaly_fit_params", PROJECT / "fit_params.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reading(**z: float) -> dict[str, Any]:
    """A record whose features sit ``z[feature]`` standard deviations from the mean."""
    record: dict[str, Any] = {}
    for feature, mean, std in zip(PARAMS["features"], PARAMS["mean"], PARAMS["std"], strict=True):
        record[feature] = mean + z.get(feature, 0.0) * std
    return record


@pytest.fixture(scope="module")
def backend() -> Any:
    return InferenceBackendLoader.from_project(PROJECT)


def test_initialize_loads_the_shipped_parameters(backend: Any) -> None:
    assert backend.features == PARAMS["features"]
    np.testing.assert_array_equal(backend.mean, PARAMS["mean"])
    np.testing.assert_array_equal(backend.std, PARAMS["std"])
    assert backend.threshold == 4.0


def test_record_at_the_mean_scores_zero(backend: Any) -> None:
    [out] = backend([_reading()])
    assert out["anomaly_score"] == pytest.approx(0.0, abs=1e-6)
    assert out["is_anomaly"] is False
    assert set(out["z_scores"]) == set(PARAMS["features"])


def test_score_is_the_largest_absolute_z_score_and_names_its_feature(backend: Any) -> None:
    [out] = backend([_reading(temperature_c=1.5, vibration_mm_s=-2.5)])
    assert out["anomaly_score"] == pytest.approx(2.5, abs=1e-3)
    assert out["top_feature"] == "vibration_mm_s"
    assert out["z_scores"]["temperature_c"] == pytest.approx(1.5, abs=1e-3)
    assert out["z_scores"]["vibration_mm_s"] == pytest.approx(-2.5, abs=1e-3)


def test_records_at_or_beyond_the_threshold_are_anomalies(backend: Any) -> None:
    outs = backend([_reading(current_a=3.9), _reading(current_a=4.1), _reading(pressure_kpa=-9)])
    assert [o["is_anomaly"] for o in outs] == [False, True, True]
    assert outs[2]["top_feature"] == "pressure_kpa"


def test_threshold_comes_from_the_backend_config(backend: Any) -> None:
    strict = InferenceBackendLoader.from_project(PROJECT, threshold=2.0)
    record = _reading(temperature_c=3.0)
    assert strict([record])[0]["is_anomaly"] is True
    assert backend([record])[0]["is_anomaly"] is False


def test_id_is_copied_and_extra_fields_are_ignored(backend: Any) -> None:
    outs = backend([{**_reading(), "id": "m-1", "site": "north"}, _reading()])
    assert outs[0]["id"] == "m-1"
    assert "site" not in outs[0]
    assert "id" not in outs[1]


def test_integer_readings_are_accepted(backend: Any) -> None:
    record = {f: round(m) for f, m in zip(PARAMS["features"], PARAMS["mean"], strict=True)}
    [out] = backend([record])
    assert out["anomaly_score"] < 1.0


def test_dict_input_returns_one_output_dict(backend: Any) -> None:
    out = backend({**_reading(), "id": 7})
    assert isinstance(out, dict)
    assert out["id"] == 7


def test_outputs_pass_the_sdk_io_checks(backend: Any) -> None:
    outs = backend.validate([_reading(), _reading(temperature_c=5)])
    assert len(outs) == 2
    json.dumps(outs)


def test_empty_batch_gives_empty_output(backend: Any) -> None:
    assert backend([]) == []


@pytest.mark.parametrize(
    ("bad_field", "bad_value", "expected"),
    [
        ("vibration_mm_s", None, "record 1: missing feature 'vibration_mm_s'"),
        ("pressure_kpa", "high", "record 1: feature 'pressure_kpa' must be a number, got str"),
        ("current_a", True, "record 1: feature 'current_a' must be a number, got bool"),
        ("current_a", [1.0], "record 1: feature 'current_a' must be a number, got list"),
        ("temperature_c", float("nan"), "record 1: feature 'temperature_c' must be a finite"),
        ("temperature_c", 10**400, "record 1: feature 'temperature_c' must be a finite"),
    ],
)
def test_bad_record_is_rejected_naming_record_index_and_field(
    backend: Any, bad_field: str, bad_value: Any, expected: str
) -> None:
    bad = _reading()
    if bad_value is None:
        del bad[bad_field]
    else:
        bad[bad_field] = bad_value
    with pytest.raises(InferenceBackendRuntimeError) as excinfo:
        backend([_reading(), bad, _reading()])
    assert "execute" in str(excinfo.value)
    assert expected in str(excinfo.value)
    assert expected in str(excinfo.value.__cause__)


def test_unloadable_parameter_file_fails_initialization_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "params.json"
    broken.write_text('{"features": ["a"], "mean": [1.0]}')
    with pytest.raises(InferenceBackendInitializationError) as excinfo:
        InferenceBackendLoader.from_project(PROJECT, params_file=str(broken))
    chain = f"{excinfo.value} <- {excinfo.value.__cause__!r}"
    assert str(broken) in chain
    assert "'std'" in chain


def test_refit_recovers_the_generating_parameters_and_loads(tmp_path: Path) -> None:
    fit_params = _load_fit_module()
    out = tmp_path / "refit.json"
    fit_params.main(["--samples", "20000", "--seed", "3", "--out", str(out)])
    refit = json.loads(out.read_text())
    assert refit["features"] == PARAMS["features"]
    for i, (mean, std) in enumerate(fit_params.HEALTHY_MACHINE.values()):
        assert refit["mean"][i] == pytest.approx(mean, abs=4 * std / 20000**0.5)
        assert refit["std"][i] == pytest.approx(std, rel=0.03)
    backend = InferenceBackendLoader.from_project(PROJECT, params_file=str(out))
    np.testing.assert_array_equal(backend.mean, refit["mean"])


def test_fit_rejects_constant_features() -> None:
    fit_params = _load_fit_module()
    readings = fit_params.generate(100, 0)
    readings[:, 2] = 1.0
    with pytest.raises(ValueError, match="vibration_mm_s"):
        fit_params.fit(readings, fit_params.FEATURES)
