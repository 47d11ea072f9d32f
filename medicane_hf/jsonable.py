"""One JSON sanitiser for every file the package writes (metrics, reports, arguments, settings)."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import numpy as np
import torch


def jsonable(value: Any, *, non_finite_as_null: bool = False) -> Any:
    """A copy of `value` that `json.dumps` (and `yaml.safe_dump`) accept.

    Dicts (keys as str), lists and tuples are walked; numpy scalars become Python numbers, arrays and
    tensors lists, enums their value, paths and any other object ``str``. ``non_finite_as_null``: NaN and
    infinities become None (JSON has no NaN; metrics files use it for "undefined here").
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v, non_finite_as_null=non_finite_as_null) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, non_finite_as_null=non_finite_as_null) for v in value]
    if isinstance(value, Enum):
        return jsonable(value.value, non_finite_as_null=non_finite_as_null)
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)):
        return jsonable(value.tolist(), non_finite_as_null=non_finite_as_null)
    if isinstance(value, float):
        return None if non_finite_as_null and not math.isfinite(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)  # paths, dtypes, accelerator objects: their text is what a reader needs
