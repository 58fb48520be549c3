"""Validation (the testing pillar): suites of data checks, run in one DuckDB pass, recorded.

Owns::

    suites.py        Suite, SuiteCheck: the YAML format, parsing with located errors, digest
    expectations.py  each check compiled to DuckDB aggregate SQL, and judged
    runner.py        validate(): all checks of a suite in ONE aggregate query, failing samples
    results.py       ValidationResult, CheckResult: success, failures, to_json()
    report.py        the self-contained HTML report
    inference.py     infer_suite(): a suite from a table's profile, with tolerances to edit
    sources.py       what a suite runs on: DataFrame, Arrow table, file, folder (plinth.tables)
    records.py       publish_result(): write the report, record the result in the ledger
    pii.py           personal data detection

::

    suite = plinth.validation.infer_suite(reference_df)   # edit suite.to_yaml(), save it
    result = plinth.validation.validate(new_df, suite)    # .success, .failures, .to_html()
    plinth.validation.validate("new.parquet", "suite.yaml", record=True)  # + report, ledger

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
    from plinth.validation.results import CheckResult, ValidationResult
    from plinth.validation.runner import validate
    from plinth.validation.suites import Suite, SuiteCheck

_LAZY = {
    "CheckResult": "plinth.validation.results",
    "Suite": "plinth.validation.suites",
    "SuiteCheck": "plinth.validation.suites",
    "ValidationResult": "plinth.validation.results",
    "infer_suite": "plinth.validation.inference",
    "run_suite": "plinth.validation.records",  # deprecated, out of __all__: use validate
    "validate": "plinth.validation.runner",
    # "pii": the pii module is a submodule: ``from plinth.validation import pii``.
}

__all__ = [
    "CheckResult",
    "Suite",
    "SuiteCheck",
    "ValidationResult",
    "infer_suite",
    "validate",
]


_lazy_getattr, __dir__ = lazy_attributes(__name__, _LAZY, globals())


def __getattr__(name: str) -> _typing.Any:
    if name == "Check":  # renamed: doctor had a Check too
        from plinth._deprecation import warn

        warn("plinth.validation.Check", "plinth.validation.SuiteCheck")
        name = "SuiteCheck"
    return _lazy_getattr(name)
