"""``TypeConversionHandler``: turns one library's value types into JSON-native Python values."""

from __future__ import annotations

import importlib
import sys
from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any

from packflow.logger import logger as _logger

__all__ = ["TypeConversionHandler"]


class TypeConversionHandler(ABC):
    """Converts values of one library (``package_name``) to JSON-native Python types.

    A handler is *available* only when its library can be imported; the import is attempted
    lazily, the first time :attr:`module` or :meth:`available` is used, so importing packflow
    never imports pandas, torch or PIL.
    """

    _UNSET: Any = object()

    def __init__(self) -> None:
        self._module: ModuleType | None = self._UNSET

    def __repr__(self) -> str:
        return type(self).__name__

    @property
    @abstractmethod
    def package_name(self) -> str:
        """Import name of the library whose types this handler converts."""

    @abstractmethod
    def is_type(self, obj: Any) -> bool:
        """True if ``obj`` is a value this handler converts (requires :attr:`module`)."""

    @abstractmethod
    def convert(self, obj: Any) -> Any:
        """Return ``obj`` as JSON-native Python values (dict, list, str, int, float, ...)."""

    @property
    def module(self) -> ModuleType | None:
        """The imported library, or ``None`` if it cannot be imported."""
        if self._module is self._UNSET:
            self._module = self._import_module()
        return self._module

    def loaded_module(self) -> ModuleType | None:
        """The library if it is already imported in this process, without importing it.

        A value of the library's types can only exist once the library is imported, so the
        normalizer asks this before :meth:`is_type` and never pays for an import.
        """
        if self._module is self._UNSET:
            loaded = sys.modules.get(self.package_name)
            if loaded is None:
                return None
            self._module = loaded
        return self._module

    def available(self) -> bool:
        """True if the handler's library can be imported."""
        return self.module is not None

    def _import_module(self) -> ModuleType | None:
        try:
            return importlib.import_module(self.package_name)
        except Exception as exc:  # any import failure means "not available"
            _logger.debug(
                "Type handler {handler} unavailable: {reason}",
                event="type_handler_unavailable",
                handler=type(self).__name__,
                reason=str(exc),
            )
            return None
