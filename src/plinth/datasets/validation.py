"""Suites run on dataset versions: the datasets pillar resolves references, loads the
tables and hands them to :mod:`plinth.validation`, which never sees a dataset reference.

::

    result = plinth.datasets.validate("flights@3", "suite.yaml", record=True)
    suite = plinth.datasets.infer_suite("flights@3")        # from the stored profile
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from plinth.context import Context
    from plinth.entities import DatasetVersion
    from plinth.progress import Progress
    from plinth.validation.results import ValidationResult
    from plinth.validation.runner import References
    from plinth.validation.suites import Suite

__all__ = ["infer_suite", "references", "validate"]


def references(*, ctx: Context | None = None) -> References:
    """What ``in_dataset`` checks naming a dataset read: ``ref -> pyarrow Table`` of the
    version (a quarantined one is refused, as by :func:`plinth.datasets.load`)."""
    from plinth.datasets.api import _context, load

    context = _context(ctx)

    def load_reference(ref: str) -> pa.Table:
        return load(ref, to="arrow", ctx=context)

    return load_reference


def _version_table(ref: str, ctx: Context) -> tuple[DatasetVersion, pa.Table]:
    from plinth.datasets.api import get, load

    version = get(ref, ctx=ctx)
    # Checking is inspecting: a quarantined version can be validated again (a fixed suite).
    return version, load(version.ref, to="arrow", allow_quarantined=True, ctx=ctx)


def validate(
    data: Any,
    suite: Suite | str | Path,
    *,
    record: bool = False,
    report_path: str | Path | None = None,
    progress: Progress | None = None,
    ctx: Context | None = None,
) -> ValidationResult:
    """Run ``suite`` on ``data``: a dataset reference ``NAME[@VERSION|@TAG]``, a table or
    a Parquet/CSV path, with the suite's ``in_dataset`` references loaded from the ledger.

    Writes the HTML report when ``report_path`` is given or ``record`` is set; with
    ``record``, saves the suite version and the result (linked to the dataset version)
    in the ledger, as :func:`plinth.validation.validate` does. ``progress``
    (:mod:`plinth.progress`) hears of the checks as they are answered.
    """
    from plinth.datasets.api import _context
    from plinth.validation.records import publish_result
    from plinth.validation.runner import check_table
    from plinth.validation.sources import is_path, resolve
    from plinth.validation.suites import Suite as SuiteFile

    checks = suite if isinstance(suite, SuiteFile) else SuiteFile.load(suite)
    context = _context(ctx)
    version: DatasetVersion | None = None
    if isinstance(data, str) and not is_path(data):
        version, table = _version_table(data, context)
        target = version.ref
    else:
        source = resolve(data)
        table, target = source.table, source.target
    result = check_table(
        table, checks, target=target, references=references(ctx=context), progress=progress
    )
    if version is None and not record and report_path is None:
        return result  # nothing to link, write or record
    return publish_result(context, checks, result, version, record=record, report_path=report_path)


def infer_suite(data: Any, *, name: str | None = None, ctx: Context | None = None) -> Suite:
    """A suite inferred from a dataset version's stored profile (``flights@3``), or from a
    table, path or profile as :func:`plinth.validation.infer_suite` does."""
    from plinth.validation.inference import infer_suite as infer
    from plinth.validation.inference import suite_from_profile
    from plinth.validation.sources import is_path

    if not isinstance(data, str) or is_path(data):
        return infer(data, name=name)
    from plinth.datasets.api import _context
    from plinth.datasets.profiles import profile_version

    context = _context(ctx)
    version, table = _version_table(data, context)
    profile = profile_version(version, ctx=context)
    return suite_from_profile(profile, version.ref, table, name=name)
