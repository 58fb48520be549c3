"""The contract for records versioned by the digest of their text — validation suites and
deployment specs — and what hangs off them: validation results and prediction-log batches.

Mixed into :class:`plinth.testing.ledger_contract.LedgerContract`, so it runs on every
ledger backend; test methods take the ``ledger`` fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from plinth.errors import NotFoundError, UsageError
from plinth.ids import new_id
from plinth.ledger import BLOB_REFERENCES, Ledger
from plinth.testing.races import digest_of, race

__all__ = ["VersionedSpecContract"]


class VersionedSpecContract:
    """Suites, validation results, deployments and prediction batches on one ledger."""

    # -- validation -------------------------------------------------------------------------

    def test_suites_are_versioned_by_digest(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        v1 = ledger.validation.save_suite(project.id, "flights", digest_of("a"))
        assert ledger.validation.save_suite(project.id, "flights", digest_of("a")) == v1
        v2 = ledger.validation.save_suite(project.id, "flights", digest_of("b"))
        other = ledger.validation.save_suite(project.id, "airports", digest_of("a"))
        assert (v1.number, v2.number, other.number) == (1, 2, 1)
        assert (v1.ref, v1.created_by) == ("flights@1", ledger.user)
        assert ledger.validation.get_suite(project.id, "flights") == v2
        assert ledger.validation.get_suite(project.id, "flights", 1) == v1
        assert ledger.validation.get_suite_by_id(v2.id) == v2
        with pytest.raises(NotFoundError, match="no suite 'flights' version 3"):
            ledger.validation.get_suite(project.id, "flights", 3)
        with pytest.raises(UsageError, match="suite digest"):
            ledger.validation.save_suite(project.id, "flights", "not-a-digest")
        assert ("validation_suites", "digest") in BLOB_REFERENCES
        assert digest_of("b") in ledger.gc.referenced_digests()

    def test_racing_suite_savers_get_one_version_per_text(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        texts = ["a", "b", "a", "b", "c", "c"]
        saved = race(
            6, lambda: ledger.validation.save_suite(project.id, "s", digest_of(texts.pop()))
        )
        by_digest = {(s.digest, s.number) for s in saved}
        assert len(by_digest) == 3
        assert sorted(n for _, n in by_digest) == [1, 2, 3]

    def test_results_are_recorded_against_suite_and_dataset_version(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        suite = ledger.validation.save_suite(project.id, "flights", digest_of("suite"))
        dataset = ledger.datasets.ensure(project.id, "flights")
        version, _ = ledger.datasets.add_version(
            dataset, kind="table", manifest_digest=digest_of("m"), size=1, file_count=1
        )
        checks: list[dict[str, Any]] = [
            {"check": "between", "column": "distance", "success": False, "observed": 9e9},
            {"check": "row_count", "column": None, "success": True, "observed": 10},
        ]
        first = ledger.validation.record_result(
            suite,
            target=version.ref,
            dataset_version_id=version.id,
            success=False,
            error_count=1,
            warning_count=0,
            results=checks,
            report_digest=digest_of("report"),
        )
        second = ledger.validation.record_result(
            suite,
            target="data/file.parquet",
            dataset_version_id=None,
            success=True,
            error_count=0,
            warning_count=0,
            results=[],
            report_digest=None,
        )
        assert (first.suite, first.suite_number, first.results) == ("flights", 1, checks)
        assert ledger.validation.results(dataset_version_id=version.id) == [first]
        assert ledger.validation.results(suite_id=suite.id) == [second, first]
        assert ledger.validation.results(suite_id=suite.id, limit=1) == [second]
        assert digest_of("report") in ledger.gc.referenced_digests()
        with pytest.raises(UsageError, match="error count"):
            ledger.validation.record_result(
                suite,
                target="x",
                dataset_version_id=None,
                success=True,
                error_count=-1,
                warning_count=0,
                results=[],
                report_digest=None,
            )

    # -- deployments ------------------------------------------------------------------------

    def test_deployments_are_versioned_by_digest(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        spec = {"name": "delays", "model": "delays@champion"}
        v1 = ledger.deployments.save(project.id, "delays", digest_of("a"), spec)
        assert ledger.deployments.save(project.id, "delays", digest_of("a"), spec) == v1
        v2 = ledger.deployments.save(project.id, "delays", digest_of("b"), {**spec, "x": 1})
        assert (v1.number, v2.number, v1.ref, v2.spec["x"]) == (1, 2, "delays@1", 1)
        assert ledger.deployments.get(project.id, "delays") == v2
        assert ledger.deployments.get(project.id, "delays", 1) == v1
        assert ledger.deployments.get_by_id(v1.id) == v1
        with pytest.raises(NotFoundError, match="no deployment 'delays' version 7"):
            ledger.deployments.get(project.id, "delays", 7)
        with pytest.raises(UsageError, match="deployment digest"):
            ledger.deployments.save(project.id, "delays", "x", spec)
        assert {("deployments", "digest"), ("prediction_batches", "digest")} <= set(BLOB_REFERENCES)
        saved = race(
            4, lambda: ledger.deployments.save(project.id, "raced", digest_of("same"), spec)
        )
        assert {s.id for s in saved} == {saved[0].id}

    def test_prediction_batches_are_found_by_request_id(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        deployment = ledger.deployments.save(project.id, "d", digest_of("d"), {"name": "d"})
        ids = sorted(new_id() for _ in range(6))
        first = ledger.deployments.record_batch(
            deployment,
            start_ms=1000,
            end_ms=2000,
            rows=3,
            digest=digest_of("b1"),
            model_versions=["m@2", "m@1", "m@2"],
            first_request_id=ids[0],
            last_request_id=ids[2],
        )
        second = ledger.deployments.record_batch(
            deployment,
            start_ms=2500,
            end_ms=3000,
            rows=3,
            digest=digest_of("b2"),
            model_versions=["m@2"],
            first_request_id=ids[3],
            last_request_id=ids[5],
            dropped=4,
        )
        assert (first.model_versions, second.dropped) == (("m@1", "m@2"), 4)
        assert ledger.deployments.find_batch(ids[1]) == first
        assert ledger.deployments.find_batch(ids[5]) == second
        assert ledger.deployments.find_batch(new_id()) is None
        assert ledger.deployments.batches(deployment.id) == [first, second]
        assert ledger.deployments.batches(deployment.id, since_ms=2100) == [second]
        assert ledger.deployments.batches(deployment.id, until_ms=2100) == [first]
        assert digest_of("b2") in ledger.gc.referenced_digests()
        for bad in ({"rows": 0}, {"end_ms": 10}, {"first_request_id": ids[5]}, {"dropped": -1}):
            args: dict[str, Any] = {
                "start_ms": 100,
                "end_ms": 200,
                "rows": 1,
                "digest": digest_of("b3"),
                "model_versions": ["m@1"],
                "first_request_id": ids[0],
                "last_request_id": ids[1],
                **bad,
            }
            with pytest.raises(UsageError):
                ledger.deployments.record_batch(deployment, **args)
        assert len(ledger.deployments.batches(deployment.id)) == 2
