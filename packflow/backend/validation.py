"""``InferenceBackendValidator``: run sample inputs through a backend and check the I/O contract.

The contract: the input is records (a list of dicts); the output is a list with one dict per
input record, each JSON-serializable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packflow.exceptions import InferenceBackendRuntimeError, InferenceBackendValidationError
from packflow.utils._json import dumps_json

if TYPE_CHECKING:
    from packflow.backend.base import InferenceBackend

__all__ = ["InferenceBackendValidator"]


class InferenceBackendValidator:
    """Checks a backend against packflow's input/output contract."""

    def __init__(self, backend: InferenceBackend) -> None:
        self.backend = backend

    def run(self, inputs: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Run ``inputs`` through the backend and check the result.

        Returns the outputs (the single row for a dict input).

        Raises:
            InferenceBackendValidationError: a contract violation, naming the row index.
            InferenceBackendRuntimeError: the backend failed (chained); not a validation issue.
        """
        input_is_dict = isinstance(inputs, dict)
        records: Any = [inputs] if input_is_dict else inputs
        _input_is_correct_format(records)
        try:
            outputs = self.backend(records)
        except Exception as exc:
            raise InferenceBackendRuntimeError(
                f"The inference backend failed while being validated (not a validation issue): "
                f"{exc}",
                step=getattr(exc, "step", None),
                record_index=getattr(exc, "record_index", None),
            ) from exc
        _output_is_list_of_dicts(outputs)
        _inputs_and_outputs_match_len(records, outputs)
        _output_is_json_serializable(outputs)
        _check_output_keys(self.backend, outputs)
        return outputs[0] if input_is_dict else outputs


def _input_is_correct_format(inputs: Any) -> None:
    """Raise unless ``inputs`` is a list of dicts (names the first bad index)."""
    if not isinstance(inputs, list):
        raise InferenceBackendValidationError(
            f"Production inputs will be in a list format. Input type received was {type(inputs)}"
        )
    for index, value in enumerate(inputs):
        if not isinstance(value, dict):
            raise InferenceBackendValidationError(
                f"Value at index {index} is not a dictionary. Type found was {type(value)}"
            )


def _inputs_and_outputs_match_len(inputs: Any, outputs: Any) -> None:
    """Raise unless there is one output row per input record."""
    if len(inputs) != len(outputs):
        raise InferenceBackendValidationError(
            "Inputs and Outputs must have matching lengths. Received "
            f"{len(inputs)} inputs and returned {len(outputs)} outputs."
        )


def _output_is_list_of_dicts(outputs: Any) -> None:
    """Raise unless ``outputs`` is a list of dicts (names the first bad row)."""
    if not isinstance(outputs, list):
        raise InferenceBackendValidationError(
            f"Outputs must be a Python list. Output type received was {type(outputs)}"
        )
    for index, value in enumerate(outputs):
        if not isinstance(value, dict):
            raise InferenceBackendValidationError(
                "Outputs must be a list of dictionaries. Value at index "
                f"{index} is not a dictionary. Type found was {type(value)}"
            )


def _output_is_json_serializable(outputs: Any) -> None:
    """Raise unless every row serializes to JSON as the worker publishes it (names the row
    index and the key): :func:`packflow.utils._json.dumps_json`."""
    for index, row in enumerate(outputs):
        try:
            dumps_json(row)
        except (TypeError, ValueError) as exc:
            where = _first_unserializable(row)
            place = f", key '{where[0]}' ({where[1]})" if where else ""
            raise InferenceBackendValidationError(
                f"Value at index {index} is not JSON Serializable{place}. "
                f"Please ensure returned values are native Python types. Error: {exc}"
            ) from exc


_JSON_SCALARS = (str, int, float, bool, type(None))


def _first_unserializable(value: Any, path: str = "") -> tuple[str, str] | None:
    """Path and type name of the first value that is no JSON scalar, or ``None``."""
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, _JSON_SCALARS):
                return (f"{path}.{key!r}" if path else repr(key), "unsupported key type")
            found = _first_unserializable(child, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for position, child in enumerate(value):
            found = _first_unserializable(child, f"{path}.{position}" if path else str(position))
            if found:
                return found
        return None
    if isinstance(value, _JSON_SCALARS):
        return None
    return (path, type(value).__name__)


def _check_output_keys(backend: InferenceBackend, outputs: list[dict[str, Any]]) -> None:
    """Warn about ``config.output_keys`` that no output row has (packflow 0.4.1)."""
    declared = getattr(backend.config, "output_keys", None)
    if not declared:
        return
    present: set[str] = set()
    for row in outputs:
        present.update(row)
    for key in sorted(set(declared) - present):
        backend.logger.warning(
            "Declared output key {key!r} is missing from every output row",
            event="declared_output_key_missing",
            key=key,
        )
