"""Validation (the testing pillar): suites of data checks, run in one DuckDB pass, recorded.

Owns::

    suites.py        Suite, Check: the YAML format, parsing with located errors, digest
    expectations.py  each check compiled to DuckDB aggregate SQL, and judged
    runner.py        validate(): all checks of a suite in ONE aggregate query, failing samples
    results.py       ValidationResult, CheckResult: success, failures, to_json()
    report.py        the self-contained HTML report
    inference.py     infer_suite(): a suite from a table's profile, with tolerances to edit
    sources.py       what a suite runs on: DataFrame, Arrow table, file, folder (plinth.tables)
    records.py       run_suite(): validate, write the report, record it in the ledger
    pii.py           personal data detection

::

    suite = plinth.validation.infer_suite(reference_df)   # edit suite.to_yaml(), save it
    result = plinth.validation.validate(new_df, suite)    # .success, .failures, .to_html()
    plinth.validation.run_suite("suite.yaml", "new.parquet") # + report + ledger record

Takes tables and profiles, never dataset references: ``plinth.datasets.validate`` resolves
those, and passes ``references=`` (``ref -> pyarrow Table``) for ``in_dataset`` checks that
name a dataset. May import the plinth core (``plinth.tables`` included) and
``plinth.profiles``; never ``plinth.datasets`` (the deprecated fallbacks of
``sources.deprecated_datasets`` import it by name, for one release). Nothing is imported
until a name is used.
"""

import typing as _typing

from plinth._lazy import lazy_attributes

if _typing.TYPE_CHECKING:
    from plinth.validation.inference import infer_suite
    from plinth.validation.records import run_suite
    from plinth.validation.results import CheckResult, ValidationResult
    from plinth.validation.runner import validate
    from plinth.validation.suites import Check, Suite

_LAZY = {
    "Check": "plinth.validation.suites",
    "CheckResult": "plinth.validation.results",
    "Suite": "plinth.validation.suites",
    "ValidationResult": "plinth.validation.results",
    "infer_suite": "plinth.validation.inference",
    "run_suite": "plinth.validation.records",
    "validate": "plinth.validation.runner",
    # "pii": the pii module is a submodule: ``from plinth.validation import pii``.
}

__all__ = [
    "Check",
    "CheckResult",
    "Suite",
    "ValidationResult",
    "infer_suite",
    "run_suite",
    "validate",
]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
