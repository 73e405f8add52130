"""Loading the project's C extensions, with an error that says how to build them."""

from __future__ import annotations

import importlib
from types import ModuleType


def extension(name: str, source: str) -> ModuleType:
    """Import the compiled module ``name`` (built from ``source`` by setup.py at install)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - only when the project was copied, not installed
        raise ImportError(
            f"the C extension {name} is missing: install the project with `pip install -e .` "
            f"(or `make test`), which compiles {source} and needs a C compiler"
        ) from exc
