"""``run_suite``: validate a table or file, write the report, record the result.

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

from plinth.validation.runner import References, check_table
from plinth.validation.suites import Suite

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DatasetVersion
    from plinth.validation.results import ValidationResult

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
    ctx: Context | None = None,
    record: bool = True,
    report_path: str | Path | None = None,
    references: References | None = None,
) -> ValidationResult:
    """Run ``suite`` on ``data`` (a table, or a Parquet/CSV file or folder).

    Writes the HTML report (``report_path``, or under ``.plinth/reports/`` when recording)
    and, with ``record``, saves the suite version and the result in the ledger. Raises
    nothing for failed checks: look at ``result.success``. A dataset version is validated
    (and the result linked to it) by ``plinth.datasets.validate``. Example::

        result = plinth.validation.run_suite("suite.yaml", "data/flights.parquet")
        if not result.success: ...
    """
    from plinth.validation.sources import deprecated_datasets, is_path, resolve

    if isinstance(data, str) and not is_path(data):
        datasets = deprecated_datasets(
            "plinth.validation.run_suite(suite, REF) with a dataset reference",
            "plinth.datasets.validate(REF, suite, record=True)",
        )
        found: ValidationResult = datasets.validate(
            data, suite, record=record, report_path=report_path, ctx=ctx
        )
        return found
    if not isinstance(suite, Suite):
        suite = Suite.load(suite)
    context = ctx
    if context is None and record:
        from plinth.context import current

        context = current()
    source = resolve(data)
    result = check_table(
        source.table, suite, target=source.target, references=references, ctx=context
    )
    return publish_result(
        context, suite, result, source.version, record=record, report_path=report_path
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
