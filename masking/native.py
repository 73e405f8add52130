"""Loading the project's C extensions, with an error that says how to build them."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa


def extension(name: str, source: str) -> ModuleType:
    """Import the compiled module ``name`` (built from ``source`` by setup.py at install)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - only when the project was copied, not installed
        raise ImportError(
            f"the C extension {name} is missing: install the project with `pip install -e .` "
            f"(or `make test`), which compiles {source} and needs a C compiler"
        ) from exc


def value_buffers(array: pa.Array) -> tuple[np.ndarray, Any, bool]:
    """Return a binary or string array's value offsets (from its own offset on), data buffer and width.

    The offsets are a view of ``len(array) + 1`` entries, int64 for the large types (``wide``)
    and int32 otherwise; the data is an empty bytes object when the array holds no bytes. This
    is what the extensions read Arrow columns through, without copying them.
    """
    wide = pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type)
    buffers = array.buffers()
    positions = np.frombuffer(buffers[1], np.int64 if wide else np.int32)
    positions = positions[array.offset : array.offset + len(array) + 1]
    return positions, b"" if buffers[2] is None else buffers[2], wide
