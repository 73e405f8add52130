"""The validation gate: prove a masked snapshot holds no personal data before it is published.

Importing this package is cheap; Great Expectations is imported when a suite is built, loaded
or run. See :mod:`expectations.gate` for the API the pipeline calls.
"""

from expectations.gate import (
    ColumnInput,
    SuiteError,
    TableInput,
    build_suite,
    failures,
    load_suite,
    save_suite,
    validate_snapshot,
    write_report,
)

__all__ = [
    "ColumnInput",
    "SuiteError",
    "TableInput",
    "build_suite",
    "failures",
    "load_suite",
    "save_suite",
    "validate_snapshot",
    "write_report",
]
