"""The contract for monitoring records: reports, alert deliveries, label batches and the
profiles of prediction-log batches.

Mixed into :class:`plinth.testing.ledger_contract.LedgerContract`, so it runs on every
ledger backend; test methods take the ``ledger`` fixture.
"""

from __future__ import annotations

import pytest

from plinth.entities import DeploymentVersion
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ids import new_id
from plinth.ledger import BLOB_REFERENCES, Ledger
from plinth.testing.races import digest_of, race

__all__ = ["MonitoringContract"]


def _deployment(ledger: Ledger, project_id: str, text: str = "a") -> DeploymentVersion:
    return ledger.deployments.save(project_id, "delays", digest_of(text), {"model": "m@1"})


class MonitoringContract:
    """Monitor reports, alerts, label batches and batch profiles on one ledger."""

    def test_reports_round_trip_newest_first(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        deployment = _deployment(ledger, project.id)
        results = {"checks": [{"name": "drift", "share": 0.25, "columns": ["a", "b"]}]}
        first = ledger.monitoring.record_report(
            project.id,
            kind="monitor",
            monitor="delays",
            status="ok",
            rows=100,
            results=results,
            deployment_id=deployment.id,
            reference="flights@9",
            window_start_ms=1,
            window_end_ms=2,
            drifted=False,
            drift_share=0.25,
            report_digest=digest_of("html"),
            spec={"window": {"rows": 100}},
        )
        second = ledger.monitoring.record_report(
            project.id, kind="drift", monitor="adhoc", status="alert", rows=5, results=[]
        )
        assert ledger.monitoring.get_report(first.id) == first
        assert first.results == results
        assert (first.drifted, first.drift_share, first.created_by) == (False, 0.25, ledger.user)
        assert ledger.monitoring.reports(project.id) == [second, first]
        assert ledger.monitoring.reports(project.id, monitor="delays") == [first]
        assert ledger.monitoring.reports(project.id, kind="drift") == [second]
        assert ledger.monitoring.reports(project.id, limit=1) == [second]
        assert ("monitor_reports", "report_digest") in BLOB_REFERENCES
        assert digest_of("html") in ledger.gc.referenced_digests()
        with pytest.raises(NotFoundError, match="no monitor report"):
            ledger.monitoring.get_report(new_id())

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"kind": "weekly"}, "report kind must be one of"),
            ({"status": "bad"}, "report status must be one of"),
            ({"rows": -1}, "report rows must be an integer"),
            ({"monitor": ""}, "monitor name must be a non-empty string"),
            ({"report_digest": "nope"}, "report digest"),
            ({"window_start_ms": 5, "window_end_ms": 4}, "window ends"),
            ({"drift_share": float("nan")}, "drift share must be a finite number"),
        ],
    )
    def test_bad_reports_write_nothing(
        self, ledger: Ledger, change: dict[str, object], message: str
    ) -> None:
        project = ledger.projects.ensure_project("contract")
        args: dict[str, object] = {
            "kind": "monitor",
            "monitor": "m",
            "status": "ok",
            "rows": 1,
            "results": [],
        }
        args.update(change)
        with pytest.raises(UsageError, match=message):
            ledger.monitoring.record_report(project.id, **args)  # type: ignore[arg-type]
        assert ledger.monitoring.reports(project.id) == []

    def test_alert_deliveries_find_the_last_sent(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        report = ledger.monitoring.record_report(
            project.id, kind="monitor", monitor="m", status="alert", rows=1, results=[]
        )
        fp = "f" * 64
        assert (
            ledger.monitoring.last_alert(project.id, monitor="m", fingerprint=fp, route="r") is None
        )
        sent = ledger.monitoring.record_alert(
            project.id,
            monitor="m",
            fingerprint=fp,
            route="r",
            status="sent",
            attempts=2,
            message="drift on 3 columns",
            report_id=report.id,
        )
        failed = ledger.monitoring.record_alert(
            project.id,
            monitor="m",
            fingerprint=fp,
            route="r",
            status="failed",
            attempts=3,
            message="drift on 3 columns",
            error="HTTP 500",
        )
        other_route = ledger.monitoring.record_alert(
            project.id,
            monitor="m",
            fingerprint=fp,
            route="r2",
            status="sent",
            attempts=1,
            message="x",
        )
        last = ledger.monitoring.last_alert(project.id, monitor="m", fingerprint=fp, route="r")
        assert last == sent
        assert (
            ledger.monitoring.last_alert(
                project.id, monitor="m", fingerprint=fp, route="r", status="failed"
            )
            == failed
        )
        assert ledger.monitoring.alerts(project.id) == [other_route, failed, sent]
        assert ledger.monitoring.alerts(project.id, monitor="other") == []
        with pytest.raises(UsageError, match="alert status must be one of"):
            ledger.monitoring.record_alert(
                project.id,
                monitor="m",
                fingerprint=fp,
                route="r",
                status="lost",
                attempts=1,
                message="x",
            )
        assert len(ledger.monitoring.alerts(project.id)) == 3

    def test_label_batches(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        batch = ledger.monitoring.record_labels(
            project.id,
            deployment="delays",
            key="request_id",
            digest=digest_of("l"),
            rows=10,
            matched=8,
        )
        assert ledger.monitoring.label_batches(project.id) == [batch]
        assert ledger.monitoring.label_batches(project.id, "other") == []
        assert (batch.rows, batch.matched, batch.key) == (10, 8, "request_id")
        assert digest_of("l") in ledger.gc.referenced_digests()
        with pytest.raises(UsageError, match="8 labels matched, but the batch holds only 7"):
            ledger.monitoring.record_labels(
                project.id,
                deployment="delays",
                key="k",
                digest=digest_of("l"),
                rows=7,
                matched=8,
            )

    def test_label_batches_are_found_by_digest_and_deleted_as_audited_tombstones(
        self, ledger: Ledger
    ) -> None:
        project = ledger.projects.ensure_project("contract")
        args = {"deployment": "web", "key": "request_id", "digest": digest_of("a")}
        assert ledger.monitoring.label_batch_by_digest(project.id, **args) is None
        batch = ledger.monitoring.record_labels(
            project.id, **args, rows=3, matched=2, label_column="y"
        )
        assert ledger.monitoring.label_batch_by_digest(project.id, **args) == batch
        assert ledger.monitoring.get_label_batch(project.id, batch.id) == batch
        assert batch.label_column == "y"
        assert not batch.deleted
        with pytest.raises(UsageError, match="needs a reason"):
            ledger.monitoring.delete_label_batch(project.id, batch.id, reason="")
        gone = ledger.monitoring.delete_label_batch(project.id, batch.id, reason="wrong file")
        assert (gone.deleted, gone.delete_reason, gone.deleted_by) == (
            True,
            "wrong file",
            batch.created_by,
        )
        assert ledger.monitoring.get_label_batch(project.id, batch.id) == gone
        assert ledger.monitoring.label_batches(project.id) == []
        assert ledger.monitoring.label_batches(project.id, include_deleted=True) == [gone]
        assert ledger.monitoring.label_batch_by_digest(project.id, **args) is None
        with pytest.raises(ConflictError, match="already deleted"):
            ledger.monitoring.delete_label_batch(project.id, batch.id, reason="again")
        with pytest.raises(NotFoundError, match="no label batch"):
            ledger.monitoring.get_label_batch(project.id, "nope")

    def test_batch_profiles_are_set_once_and_batches_span_versions(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        v1 = _deployment(ledger, project.id, "a")
        v2 = _deployment(ledger, project.id, "b")
        other = ledger.deployments.save(project.id, "other", digest_of("a"), {"model": "m@1"})
        made = []
        for n, version in enumerate((v1, v2, other)):
            made.append(
                ledger.deployments.record_batch(
                    version,
                    start_ms=10 * n,
                    end_ms=10 * n + 5,
                    rows=1,
                    digest=digest_of(f"batch{n}"),
                    model_versions=["m@1"],
                    first_request_id=new_id(),
                    last_request_id="f" * 36,
                )
            )
        found = ledger.deployments.batches_of(project.id, "delays")
        assert [b.id for b in found] == [made[0].id, made[1].id]
        assert [b.id for b in ledger.deployments.batches_of(project.id, "delays", since_ms=12)] == [
            made[1].id
        ]
        assert ledger.deployments.batches_of(project.id, "delays", until_ms=-1) == []
        assert found[0].profile_digest is None
        outcomes = race(4, lambda: ledger.deployments.set_batch_profile(made[0].id, digest_of("p")))
        assert sorted(outcomes) == [False, False, False, True]
        assert ledger.deployments.batches_of(project.id, "delays")[0].profile_digest == digest_of(
            "p"
        )
        assert ledger.deployments.set_batch_profile(new_id(), digest_of("p")) is False
        assert ("prediction_batches", "profile_digest") in BLOB_REFERENCES
        assert digest_of("p") in ledger.gc.referenced_digests()
