"""Built-in ``TypeConversionHandler`` implementations for numpy, pandas, torch and PIL."""

from __future__ import annotations

import base64
import io
from typing import Any

from packflow.utils.normalize.base import TypeConversionHandler

__all__ = [
    "NumpyTypeHandler",
    "PandasDataFrameHandler",
    "PandasSeriesHandler",
    "PillowImageHandler",
    "TorchScalarHandler",
    "TorchTensorHandler",
]


class NumpyTypeHandler(TypeConversionHandler):
    """``numpy.ndarray`` and numpy scalars -> ``tolist()``."""

    @property
    def package_name(self) -> str:
        return "numpy"

    def is_type(self, obj: Any) -> bool:
        np = self.module
        return np is not None and isinstance(obj, (np.ndarray, np.generic))

    def convert(self, obj: Any) -> Any:
        return obj.tolist()


class PandasSeriesHandler(TypeConversionHandler):
    """``pandas.Series`` -> list."""

    @property
    def package_name(self) -> str:
        return "pandas"

    def is_type(self, obj: Any) -> bool:
        pd = self.module
        return pd is not None and isinstance(obj, pd.Series)

    def convert(self, obj: Any) -> Any:
        return obj.to_list()


class PandasDataFrameHandler(TypeConversionHandler):
    """``pandas.DataFrame`` -> ``to_dict("split")`` (index, columns, data)."""

    @property
    def package_name(self) -> str:
        return "pandas"

    def is_type(self, obj: Any) -> bool:
        pd = self.module
        return pd is not None and isinstance(obj, pd.DataFrame)

    def convert(self, obj: Any) -> Any:
        return obj.to_dict("split")


class TorchScalarHandler(TypeConversionHandler):
    """A one-element CPU ``FloatTensor``/``IntTensor`` -> Python number."""

    @property
    def package_name(self) -> str:
        return "torch"

    def is_type(self, obj: Any) -> bool:
        torch = self.module
        return (
            torch is not None
            and isinstance(obj, (torch.FloatTensor, torch.IntTensor))
            and obj.numel() == 1
        )

    def convert(self, obj: Any) -> Any:
        return obj.item()


class TorchTensorHandler(TypeConversionHandler):
    """Any ``torch.Tensor`` -> nested lists (detached, moved to CPU)."""

    @property
    def package_name(self) -> str:
        return "torch"

    def is_type(self, obj: Any) -> bool:
        torch = self.module
        return torch is not None and isinstance(obj, torch.Tensor)

    def convert(self, obj: Any) -> Any:
        return obj.detach().cpu().numpy().tolist()


class PillowImageHandler(TypeConversionHandler):
    """``PIL.Image.Image`` -> base64-encoded PNG string."""

    @property
    def package_name(self) -> str:
        return "PIL.Image"

    def is_type(self, obj: Any) -> bool:
        image = self.module
        return image is not None and isinstance(obj, image.Image)

    def convert(self, obj: Any) -> Any:
        buffer = io.BytesIO()
        obj.save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode("ascii")
