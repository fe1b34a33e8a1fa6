"""What every preprocessor is: the base class, the passthrough, and how failures are reported.

A preprocessor is resolved once from the configuration and then called per batch; any
failure surfaces as ``PreprocessorRuntimeError``, naming the record (``record_index``) when
it can be pinned to one. :func:`map_records` is the per-record loop the records and numpy
preprocessors share.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, TypeVar

from packflow.backend.configuration import BackendConfig
from packflow.exceptions import PreprocessorRuntimeError
from packflow.utils._grammar import with_article
from packflow.utils._paths import AmbiguousPathError

__all__ = [
    "DICTS",
    "PassthroughPreprocessor",
    "Preprocessor",
    "Records",
    "map_records",
    "wrapped_error",
]

Records = list[dict[str, Any]]
DICTS = frozenset({dict})  # ``set(map(type, records)) <= DICTS``: every record an exact dict
_T = TypeVar("_T")


class Preprocessor(ABC):
    """Base class of the preprocessors: ``resolve()`` once, then ``process()`` per call.

    ``passthrough`` is true when ``process`` returns its input itself, so a caller may skip
    the call.
    """

    passthrough: bool = False

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.resolve()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def __call__(self, raw_inputs: Records) -> Any:
        """Run :meth:`process`; failures raise ``PreprocessorRuntimeError`` (chained)."""
        try:
            return self.process(raw_inputs)
        except PreprocessorRuntimeError:
            raise
        except Exception as exc:
            raise wrapped_error(exc) from exc

    def failure_hint(self, data: Any) -> str | None:
        """What to add to the error of a later step that failed on ``data`` (this output)."""
        return None

    @abstractmethod
    def resolve(self) -> None:
        """Check the configuration and prepare whatever ``process`` needs."""

    @abstractmethod
    def process(self, raw_inputs: Records) -> Any:
        """Transform a batch of records."""


class PassthroughPreprocessor(Preprocessor):
    """Returns its input untouched."""

    passthrough = True

    def resolve(self) -> None:
        """Nothing to prepare."""

    def process(self, raw_inputs: Records) -> Records:
        """Return ``raw_inputs`` itself."""
        return raw_inputs


def wrapped_error(exc: Exception) -> PreprocessorRuntimeError:
    """The error a preprocessing failure that is not a ``PreprocessorRuntimeError`` becomes."""
    return PreprocessorRuntimeError(
        f"Failed to preprocess inputs with the following exception: {exc}"
    )


def _record_error(index: int, exc: Exception) -> PreprocessorRuntimeError:
    field = exc.key_path if isinstance(exc, AmbiguousPathError) else None
    return PreprocessorRuntimeError(
        f"Failed to preprocess inputs: record {index}: {exc}", record_index=index, field=field
    )


def _not_a_record(index: int, record: Any) -> PreprocessorRuntimeError:
    return PreprocessorRuntimeError(
        f"Failed to preprocess inputs: record {index} is not a dict (got "
        f"{with_article(type(record).__name__)})",
        record_index=index,
    )


def map_records(records: Records, transform: Callable[[dict[str, Any]], _T]) -> list[_T]:
    """Apply ``transform`` to each record of ``records`` (a list of dicts), in order.

    Raises ``PreprocessorRuntimeError``: ``records`` is not a list, or naming the record
    (``record_index``) that is not a dict or that ``transform`` failed on.
    """
    if not isinstance(records, list):
        raise PreprocessorRuntimeError(
            f"Failed to preprocess inputs: expected a list of records, got {type(records).__name__}"
        )
    if set(map(type, records)) <= DICTS:  # the usual case: one C-level map
        try:
            return list(map(transform, records))
        except PreprocessorRuntimeError:
            raise
        except Exception as exc:
            raise _record_error(_failing_index(records, transform), exc) from exc
    out: list[_T] = []
    append = out.append
    index = 0
    try:
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise _not_a_record(index, record)
            append(transform(record))
    except PreprocessorRuntimeError:
        raise
    except Exception as exc:
        raise _record_error(index, exc) from exc
    return out


def _failing_index(records: Records, transform: Callable[[dict[str, Any]], Any]) -> int:
    """The index of the first record ``transform`` raises on (transforms are pure)."""
    for index, record in enumerate(records):
        try:
            transform(record)
        except Exception:
            return index
    return 0
