"""Concatenating Arrow string arrays and literal text row by row, in one C pass.

Used where a column of text is built from pieces: fakes from pool entries, and the SQL
artifact's rows from rendered cells. Arrow's ``binary_join_element_wise`` does the same but
checks every part for nulls value by value; ``masking/_assemble.c`` sums the lengths, then
copies, with the GIL released.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from masking.native import extension, value_buffers

_assemble = extension("_masking_assemble", "masking/_assemble.c")

Part = str | bytes | pa.Array | tuple[pa.Array, np.ndarray]


def concatenate(rows: int, *parts: Part) -> pa.Array:
    """Return the string array whose row i joins, in order, every part's text for row i.

    A part is literal text (the same in every row), an Arrow string array of ``rows`` values
    (row i takes value i), or ``(pool, index)``: a string array and one pool position per row.
    Arrays must hold no nulls and be of type string (int32 offsets), and the result must fit
    int32 offsets; ValueError otherwise.
    """
    specs: list[Any] = []
    for part in parts:
        if isinstance(part, (str, bytes)):
            specs.append(part.encode() if isinstance(part, str) else part)
        elif isinstance(part, tuple):
            pool, index = part
            specs.append((*_buffers(pool), np.ascontiguousarray(index, np.int64)))
        else:
            specs.append((*_buffers(part), None))
    offsets = np.empty(rows + 1, np.int32)
    data = _assemble.assemble(rows, specs, offsets)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _buffers(array: pa.Array) -> tuple[np.ndarray, Any]:
    """The int32 offsets (from the array's offset on) and the data buffer of a string array."""
    if array.null_count:
        raise ValueError("concatenated arrays must hold no nulls")
    if not pa.types.is_string(array.type):
        raise ValueError(f"concatenated arrays must be of type string (int32 offsets), got {array.type}")
    positions, data, _ = value_buffers(array)
    return positions, data
