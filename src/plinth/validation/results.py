"""Validation results: one :class:`CheckResult` per check, gathered in a :class:`ValidationResult`.

``result.success`` is False when any error-level check failed; warnings are reported but do
not fail. ``to_dict()`` is the JSON shape of ``plinth validate run --json``::

    {"success": false, "suite": ..., "target": ..., "row_count": ..., "results": [
        {"check", "column", "success", "observed", "expected", "severity",
         "failing_count", "failing_fraction", "sample", ...}]}
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckResult", "ValidationResult", "jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` with dates, decimals, bytes and non-finite floats made JSON-safe."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    return str(value)


def suite_label(result: ValidationResult) -> str:
    """How a suite reads in human output: ``suite items v2``; never ``items@2``, which reads
    as a dataset version."""
    if result.suite_version is None:
        return f"suite {result.suite}"
    number = result.suite_version.rpartition("@")[2]
    return f"suite {result.suite} v{number}"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check."""

    index: int
    check: str
    column: str | None
    severity: str
    success: bool
    observed: Any
    expected: str
    failing_count: int | None = None
    failing_fraction: float | None = None
    #: Up to five distinct failing values (rows, for ``sql`` checks).
    sample: tuple[Any, ...] = ()
    #: The check's own arguments, as written in the suite.
    args: dict[str, Any] = field(default_factory=dict)
    #: Why it failed when the numbers do not say (a missing column, a wrong type).
    message: str | None = None

    @property
    def name(self) -> str:
        """``between`` or, for SQL checks, ``sql NAME``."""
        return f"sql {self.args['name']}" if self.check == "sql" else self.check

    def to_dict(self) -> dict[str, Any]:
        # "number" is the table's "#" and the "check N" of messages (from 1); "index" is the
        # position in the suite's checks list (from 0), as in error fields "checks[i]"
        return {
            "index": self.index,
            "number": self.index + 1,
            "check": self.check,
            "column": self.column,
            "success": self.success,
            "observed": jsonable(self.observed),
            "expected": self.expected,
            "severity": self.severity,
            "failing_count": self.failing_count,
            "failing_fraction": self.failing_fraction,
            "sample": jsonable(list(self.sample)),
            "message": self.message,
            "args": jsonable(self.args),
        }


@dataclass(frozen=True)
class ValidationResult:
    """Every check's outcome on one table, and what was checked."""

    suite: str
    suite_digest: str
    target: str
    row_count: int
    column_count: int
    results: tuple[CheckResult, ...]
    checked_at: str
    #: Seconds the checks took (reading the data not included).
    elapsed_s: float
    #: Set by ``validate(..., record=True)``: the ledger record, report and version.
    record_id: str | None = None
    report_path: str | None = None
    dataset_version: str | None = None
    #: ``NAME@NUMBER`` of the suite version saved in the ledger.
    suite_version: str | None = None

    @property
    def success(self) -> bool:
        """No error-level check failed."""
        return not self.errors

    @property
    def failures(self) -> list[CheckResult]:
        """Failed checks, errors and warnings."""
        return [r for r in self.results if not r.success]

    @property
    def errors(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "suite": self.suite,
            "suite_digest": self.suite_digest,
            "suite_version": self.suite_version,
            "target": self.target,
            "dataset_version": self.dataset_version,
            "row_count": self.row_count,
            "column_count": self.column_count,
            "checked_at": self.checked_at,
            "elapsed_s": self.elapsed_s,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "record_id": self.record_id,
            "report_path": self.report_path,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_html(self) -> str:
        """A self-contained HTML report (inline CSS, every value escaped)."""
        from plinth.validation.report import render_html

        return render_html(self)

    def _repr_html_(self) -> str:
        """The result as tables in Jupyter: verdict and checks, failed first, escaped."""
        from plinth.validation.report import notebook_html

        return notebook_html(self)

    def __repr__(self) -> str:
        state = "passed" if self.success else "failed"
        return (
            f"ValidationResult(suite={self.suite!r}, {state}, checks={len(self.results)}, "
            f"errors={len(self.errors)}, warnings={len(self.warnings)})"
        )
