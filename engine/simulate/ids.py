"""Zero-padded identifiers ("c000123", "m0001", "e000000042") built without a Python loop per row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

STRING_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)  # pandas' default ``str`` dtype


def id_width(count: int, minimum: int) -> int:
    """Digits needed so that ``count`` ids all have the same length (and sort as their numbers)."""
    return max(minimum, len(str(max(count - 1, 0))))


def format_ids(prefix: str, numbers: np.ndarray, width: int, valid: np.ndarray | None = None) -> pd.Series:
    """``prefix`` + ``numbers`` zero-padded to ``width`` digits; rows where ``valid`` is False are missing."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"ids must lie in [0, 10**{width}), got {numbers.min()}..{numbers.max()}")
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    row_width = len(head) + width
    chars = np.empty((len(numbers), row_width), dtype=np.uint8)
    chars[:, : len(head)] = head
    rest = numbers.copy()
    for position in range(row_width - 1, len(head) - 1, -1):
        chars[:, position] = 48 + rest % 10
        rest //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int64) * row_width
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(chars)]
    if valid is not None:
        buffers[0] = pa.array(np.asarray(valid, dtype=bool)).buffers()[1]
    array = pa.LargeStringArray.from_buffers(len(numbers), buffers[1], buffers[2], buffers[0])
    return pd.Series(pd.array(array, dtype=STRING_DTYPE))
