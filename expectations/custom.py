"""Great Expectations custom expectations backed by :mod:`masking.detectors`.

Importing this module registers :class:`ExpectColumnValuesToHoldNoDetectorMatches` with GX. It
must be imported before a suite is loaded from JSON: GX silently drops expectations whose class
is unknown (see :func:`expectations.gate.load_suite`, which checks the count).

One suite holds one expectation per text column, listing the detector kinds it checks; its
result counts, per kind, the rows holding a match, and the gate reports one check per kind, so
a failure still names its kind. (An expectation per kind cost GX's own per-expectation work
fifteen times per column and chunk: a fifth of the gate's time.) The expectation reads the
column's :class:`~expectations.findings.Findings` (every kind in one detector pass, reserved
values not counted), which the validation gate shares for its survivor check.

Known limitations:
    Results never carry values, but GX computes the findings in memory for the duration of
    one batch.
"""

from __future__ import annotations

from expectations.gximport import import_gx

import_gx()  # quietly, and without what the gate never runs, before the imports below

from great_expectations.compatibility import pydantic  # noqa: E402
from great_expectations.execution_engine import PandasExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import ColumnAggregateExpectation  # noqa: E402
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (  # noqa: E402
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)

from expectations.findings import check_name, findings_for  # noqa: E402
from masking import detectors  # noqa: E402


class ColumnDetectorMatchCounts(ColumnAggregateMetricProvider):
    """Per detector kind, the number of rows holding a confirmed, non-reserved match."""

    metric_name = "column.cleanroom_detector_match_counts"
    value_keys = ("kinds",)

    # Nulls never match; keeping them in lets the gate's survivor check reuse the cached
    # analysis of the very same unfiltered column.
    @column_aggregate_value(engine=PandasExecutionEngine, filter_column_isnull=False)
    def _pandas(cls, column, kinds, **kwargs):
        found = findings_for(column)
        return {kind: int(found.rows[kind].size) if kind in found.rows else 0 for kind in kinds}


class ExpectColumnValuesToHoldNoDetectorMatches(ColumnAggregateExpectation):
    """Expect no value of the column to hold a match of any of ``kinds`` from :mod:`masking.detectors`.

    Matches are confirmed the way the detectors confirm them (Luhn for cards, mod-97 for
    IBANs, entropy for tokens). Reserved values that fakes write (``@example.com``, 555
    numbers, documentation addresses) do not count. The result's ``observed_value`` maps each
    kind to its count of offending rows: counts only, never a value.
    """

    kinds: list[str] = pydantic.Field(description="detector kinds from masking.detectors.DETECTORS, e.g. [email, card]")

    metric_dependencies = ("column.cleanroom_detector_match_counts",)
    success_keys = ("kinds",)
    args_keys = ("column", "kinds")
    library_metadata = {"maturity": "experimental", "tags": ["cleanroom", "pii"], "contributors": []}

    @pydantic.validator("kinds")
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(detectors.DETECTORS))
        if unknown or not value:
            raise ValueError(
                f"kinds must name detector kinds, got unknown {unknown or 'none at all'}; "
                f"known: {', '.join(sorted(detectors.DETECTORS))}"
            )
        return value

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        counts = metrics["column.cleanroom_detector_match_counts"]
        return {"success": not any(counts.values()), "result": {"observed_value": counts}}
