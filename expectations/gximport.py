"""Import Great Expectations once, quietly, and without the modules the gate never runs.

``import great_expectations`` executes every expectation module it ships, and two of those
import libraries at module level that only their own expectation uses: Altair (the charts
of ``expect_column_kl_divergence_to_be_less_than``) and ``scipy.stats`` (the distribution
tests). Loading them is about 40% of the import, which every validate task pays.
:func:`import_gx` imports GX with those modules deferred through the standard library's
:class:`importlib.util.LazyLoader`: each is created empty and executed in full on the first
attribute anyone reads from it, so an expectation that does use them still works; only the
cost moves to that first use.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import threading
from types import ModuleType

DEFERRED = frozenset({"altair", "scipy.stats", "scipy.spatial"})
"""Modules GX imports eagerly that no cleanroom check uses (see the module docstring)."""

_LOCK = threading.Lock()


class _DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds the :data:`DEFERRED` modules as the other finders would, with a lazy loader."""

    def find_spec(self, name, path, target=None):
        if name not in DEFERRED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def import_gx() -> ModuleType:
    """Return ``great_expectations``, imported with its INFO chatter off and :data:`DEFERRED` lazy."""
    with _LOCK:
        if "great_expectations" in sys.modules:
            return sys.modules["great_expectations"]
        # GX logs hundreds of INFO lines while it registers its API docs.
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        finder = _DeferringFinder()
        sys.meta_path.insert(0, finder)
        try:
            import great_expectations
        finally:
            sys.meta_path.remove(finder)
        return great_expectations
