"""Arrow's allocator in cleanroom's task processes."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def use_returning_allocator() -> None:
    """Allocate Arrow memory from jemalloc and hand freed pages back to the system at once.

    Arrow's default pool in the Linux wheels (mimalloc) keeps freed pages for reuse, so a task
    that streams batches of text holds a few hundred MB it no longer uses. Measured on the
    benchmark's 1,000,000 customers: validation peaked at 865 MB under mimalloc and 694 MB
    under jemalloc with decay 0, and ran in 15.3 s instead of 16.9 s. An explicit
    ``ARROW_DEFAULT_MEMORY_POOL`` in the environment is left alone.
    """
    import pyarrow as pa

    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL") or pa.default_memory_pool().backend_name == "jemalloc":
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # builds without jemalloc (the macOS wheels): keep the default
        log.debug("pyarrow has no jemalloc; keeping the %s pool", pa.default_memory_pool().backend_name)
        return
    pa.set_memory_pool(pool)
    pa.jemalloc_set_decay_ms(0)
