"""Recording a validation result: the report, the suite version and the result.

The recorded result ties the suite version (its YAML text stored as a blob, numbered by
digest in ``ledger.validation``) to the dataset version it checked, with every check's
outcome and the HTML report as a blob, and a lineage edge
``validation_result --validated--> dataset_version``. Blobs are written before records,
so a failure never leaves a record pointing at nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.validation.suites import Suite

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DatasetVersion
    from plinth.validation.results import ValidationResult
    from plinth.validation.runner import References

__all__ = ["RECORD_TYPE", "default_report_path", "publish_result", "run_suite"]

#: The lineage record type of a validation result.
RECORD_TYPE = "validation_result"


def default_report_path(ctx: Context, suite: str) -> Path:
    """``.plinth/reports/validation-SUITE-YYYYMMDDTHHMMSSZ.html``."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return ctx.settings.data_dir / "reports" / f"validation-{suite}-{stamp}.html"


def run_suite(
    suite: Suite | str | Path,
    data: Any,
    *,
    record: bool = True,
    report_path: str | Path | None = None,
    references: References | None = None,
    ctx: Context | None = None,
) -> ValidationResult:
    """Deprecated: ``plinth.validation.validate(data, suite, record=True)``, subject first."""
    from plinth._deprecation import warn
    from plinth.validation.runner import validate

    warn(
        "plinth.validation.run_suite(suite, data)",
        "plinth.validation.validate(data, suite, record=True)",
    )
    return validate(
        data, suite, record=record, report_path=report_path, references=references, ctx=ctx
    )


def publish_result(
    ctx: Context | None,
    suite: Suite,
    result: ValidationResult,
    version: DatasetVersion | None,
    *,
    record: bool = True,
    report_path: str | Path | None = None,
) -> ValidationResult:
    """Write the HTML report and, with ``record``, the ledger records of a result.

    ``plinth data add --suite`` validates the files before the version exists, then calls
    this with the version it made (published or quarantined).
    """
    if version is not None:
        result = dataclasses.replace(result, dataset_version=version.ref)
    path: Path | None = Path(report_path) if report_path is not None else None
    if path is None and record and ctx is not None:
        path = default_report_path(ctx, suite.name)
    if path is not None:
        result = dataclasses.replace(result, report_path=str(path))
    html = result.to_html()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(path)
    if record and ctx is not None:
        result = _record(ctx, suite, result, html, version)
    return result


def _record(
    ctx: Context,
    suite: Suite,
    result: ValidationResult,
    html: str,
    version: DatasetVersion | None,
) -> ValidationResult:
    from plinth.entities import RecordRef

    suite_blob = ctx.blobs.put_bytes(suite.yaml_text.encode("utf-8"))
    report_blob = ctx.blobs.put_bytes(html.encode("utf-8"))
    store = ctx.ledger.validation
    suite_version = store.save_suite(ctx.project.id, suite.name, suite_blob.digest)
    recorded = store.record_result(
        suite_version,
        target=result.target,
        dataset_version_id=None if version is None else version.id,
        success=result.success,
        error_count=len(result.errors),
        warning_count=len(result.warnings),
        results=[r.to_dict() for r in result.results],
        report_digest=report_blob.digest,
    )
    if version is not None:
        ctx.ledger.lineage.add(
            RecordRef(RECORD_TYPE, recorded.id),
            RecordRef("dataset_version", version.id),
            "validated",
        )
    return dataclasses.replace(result, record_id=recorded.id, suite_version=suite_version.ref)
