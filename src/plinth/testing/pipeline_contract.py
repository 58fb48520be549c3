"""The contract for pipeline records: runs that end once, step runs, the step cache, trigger
firings that exactly one agent wins, and gate / rollout decisions.

Mixed into :class:`plinth.testing.ledger_contract.LedgerContract`, so it runs on every
ledger backend; test methods take the ``ledger`` fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from plinth.entities import PipelineRun, RecordRef
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ledger import Ledger
from plinth.testing.races import digest_of, race

__all__ = ["PipelineContract"]


def _start(ledger: Ledger, project_id: str, pipeline: str = "train", **kwargs: Any) -> PipelineRun:
    args: dict[str, Any] = {
        "trigger": "manual",
        "reason": "started by hand",
        "params": {"lr": 0.1, "months": [1, 2]},
        "code_digest": digest_of(pipeline),
        "executor": "local",
        **kwargs,
    }
    return ledger.pipelines.start_run(project_id, pipeline, **args)


class PipelineContract:
    """Pipeline runs, step runs, the cache, firings and decisions on one ledger."""

    def test_a_pipeline_run_starts_running_and_ends_once(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.pipelines
        run = _start(ledger, project.id, trigger="dataset", reason="dataset flights@7 was added")
        assert (run.status, run.ended_at, run.error, run.resumes) == ("running", None, None, None)
        assert (run.trigger, run.reason) == ("dataset", "dataset flights@7 was added")
        assert run.params == {"lr": 0.1, "months": [1, 2]}
        assert run.created_by == ledger.user
        assert store.get_run(run.id) == run
        failed = store.finish_run(run.id, "failed", error="step train: boom")
        assert (failed.status, failed.error) == ("failed", "step train: boom")
        assert failed.ended_at is not None
        assert failed.ended_at >= run.started_at
        with pytest.raises(ConflictError, match="already ended"):
            store.finish_run(run.id, "succeeded")
        assert store.get_run(run.id).status == "failed"
        # A failed run may be marked resumed once a later run takes over from it.
        later = _start(ledger, project.id, resumes=run.id)
        assert store.finish_run(run.id, "resumed").status == "resumed"
        assert later.resumes == run.id
        done = store.finish_run(later.id, "succeeded")
        assert (done.status, done.error) == ("succeeded", None)
        with pytest.raises(ConflictError):
            store.finish_run(later.id, "resumed")  # only a failed run is resumed
        with pytest.raises(UsageError, match="status must be one of"):
            store.finish_run(later.id, "running")
        with pytest.raises(NotFoundError):
            store.get_run("missing")
        with pytest.raises(NotFoundError):
            store.finish_run("missing", "failed")

    def test_racing_finishers_end_a_run_once(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        run = _start(ledger, project.id)

        def finish() -> str:
            try:
                return ledger.pipelines.finish_run(run.id, "succeeded").status
            except ConflictError:
                return "conflict"

        outcomes = race(4, finish)
        assert sorted(outcomes) == ["conflict"] * 3 + ["succeeded"]

    def test_runs_are_listed_newest_first_per_project_and_pipeline(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        other = ledger.projects.ensure_project("other")
        first = _start(ledger, project.id, "train")
        second = _start(ledger, project.id, "score")
        third = _start(ledger, project.id, "train")
        _start(ledger, other.id, "train")
        store = ledger.pipelines
        assert [r.id for r in store.runs(project.id)] == [third.id, second.id, first.id]
        assert [r.id for r in store.runs(project.id, pipeline="train")] == [third.id, first.id]
        assert [r.id for r in store.runs(project.id, limit=1)] == [third.id]
        assert store.runs(project.id, pipeline="nope") == []

    def test_step_runs_are_recorded_and_end_once(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.pipelines
        run = _start(ledger, project.id)
        load = store.record_step(run, "load", status="running", cache_key=digest_of("k1"))
        assert (load.status, load.ended_at, load.attempts, load.outputs) == (
            "running",
            None,
            0,
            [],
        )
        assert (load.pipeline_run_id, load.project_id) == (run.id, project.id)
        output = {"name": "table", "kind": "table", "digest": digest_of("t"), "size": 10}
        done = store.finish_step(load.id, status="succeeded", attempts=2, outputs=[output])
        assert (done.status, done.attempts, done.outputs) == ("succeeded", 2, [output])
        assert done.ended_at is not None
        with pytest.raises(ConflictError, match="not running"):
            store.finish_step(load.id, status="failed", attempts=3)
        with pytest.raises(UsageError):
            store.finish_step(load.id, status="running", attempts=1)
        skipped = store.record_step(run, "train", status="skipped", error="load failed")
        assert skipped.ended_at is not None
        assert skipped.error == "load failed"
        cached = store.record_step(
            run, "score", status="cached", cache_hit=True, source_step_run_id=load.id
        )
        assert cached.cache_hit is True
        assert cached.source_step_run_id == load.id
        assert [s.step for s in store.steps(run.id)] == ["load", "train", "score"]
        assert store.steps(run.id)[0] == done
        with pytest.raises(UsageError, match="step status"):
            store.record_step(run, "x", status="done")

    def test_find_cached_returns_the_newest_succeeded_step_with_the_key(
        self, ledger: Ledger
    ) -> None:
        project = ledger.projects.ensure_project("contract")
        other = ledger.projects.ensure_project("other")
        store = ledger.pipelines
        key = digest_of("train-key")
        assert store.find_cached(project.id, key) is None
        run = _start(ledger, project.id)
        failed = store.record_step(run, "train", status="running", cache_key=key)
        store.finish_step(failed.id, status="failed", attempts=1, error="boom")
        assert store.find_cached(project.id, key) is None  # a failure is never reused
        first = store.record_step(run, "train", status="running", cache_key=key)
        store.finish_step(first.id, status="succeeded", attempts=1)
        second = store.record_step(run, "train", status="running", cache_key=key)
        newest = store.finish_step(second.id, status="succeeded", attempts=1)
        assert store.find_cached(project.id, key) == newest
        assert store.find_cached(project.id, digest_of("other-key")) is None
        assert store.find_cached(other.id, key) is None

    def test_a_step_ends_with_its_artifacts_and_lineage_in_one_transaction(
        self, ledger: Ledger
    ) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.pipelines
        run = _start(ledger, project.id)
        load = store.record_step(run, "load", status="running", cache_key=digest_of("k1"))
        train = store.record_step(run, "train", status="running", cache_key=digest_of("k2"))
        me = RecordRef("step_run", train.id)
        output = {"name": "return", "kind": "json", "digest": digest_of("o"), "size": 3}
        artifacts = [("outputs/return.json", digest_of("o"), 3, "application/json")]
        links = [(RecordRef("step_run", load.id), "used"), (RecordRef("run", "r-1"), "ran")]
        # Anything wrong writes nothing: a bad artifact, a bad link, a bad status.
        bad_artifact = [("../escape.json", digest_of("o"), 3, None)]
        with pytest.raises(UsageError):
            store.end_step(train, status="succeeded", attempts=1, artifacts=bad_artifact)
        with pytest.raises(UsageError):
            store.end_step(train, status="succeeded", attempts=1, artifacts=[("a", "xyz", 1, None)])
        twice = [("a.json", digest_of("a"), 1, None), ("a.json", digest_of("b"), 1, None)]
        with pytest.raises(ConflictError):
            store.end_step(train, status="succeeded", attempts=1, artifacts=twice)
        with pytest.raises(UsageError, match="lineage relation"):
            store.end_step(train, status="succeeded", attempts=1, links=[(me, "")])
        with pytest.raises(UsageError, match="RecordRef"):
            store.end_step(train, status="succeeded", attempts=1, links=[("run", "ran")])  # type: ignore[list-item]
        with pytest.raises(UsageError, match="ends succeeded"):
            store.end_step(train, status="running", attempts=1)
        assert store.steps(run.id)[1].status == "running"
        assert ledger.artifacts.list(me) == []
        assert ledger.lineage.edges_to(me) == []
        done = store.end_step(
            train,
            status="succeeded",
            attempts=2,
            outputs=[output],
            run_id="r-1",
            artifacts=artifacts,
            links=links,
        )
        assert (done.status, done.attempts, done.outputs, done.run_id) == (
            "succeeded",
            2,
            [output],
            "r-1",
        )
        assert done.ended_at is not None
        assert store.steps(run.id)[1] == done  # what it returns is what is stored
        [artifact] = ledger.artifacts.list(me)
        assert (artifact.path, artifact.digest, artifact.size) == (
            "outputs/return.json",
            digest_of("o"),
            3,
        )
        assert [(e.src, e.relation) for e in ledger.lineage.edges_to(me)] == [
            (RecordRef("pipeline_run", run.id), "contains")
        ]
        assert sorted((e.dst.id, e.relation) for e in ledger.lineage.edges_from(me)) == [
            (load.id, "used"),
            ("r-1", "ran"),
        ]
        with pytest.raises(ConflictError, match="not running"):  # it ends once
            store.end_step(train, status="failed", attempts=3, links=links)
        failed = store.end_step(load, status="failed", attempts=1, error="boom")
        assert (failed.status, failed.error, failed.outputs) == ("failed", "boom", [])
        assert store.steps(run.id)[0] == failed
        assert store.find_cached(project.id, digest_of("k1")) is None
        assert store.find_cached(project.id, digest_of("k2")) == done

    def test_a_cached_step_is_written_with_its_lineage(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.pipelines
        first = _start(ledger, project.id)
        output = {"name": "return", "kind": "json", "digest": digest_of("o"), "size": 3}
        computed = store.record_step(first, "train", status="running", cache_key=digest_of("k"))
        computed = store.end_step(computed, status="succeeded", attempts=1, outputs=[output])
        second = _start(ledger, project.id)
        used = RecordRef("dataset_version", "dv-1")
        cached = store.record_cached(
            second, "train", cache_key=digest_of("k"), source=computed, links=[(used, "used")]
        )
        assert (cached.status, cached.cache_hit, cached.ended_at is not None) == (
            "cached",
            True,
            True,
        )
        assert (cached.outputs, cached.source_step_run_id) == ([output], computed.id)
        assert store.steps(second.id) == [cached]
        me = RecordRef("step_run", cached.id)
        assert [(e.src, e.relation) for e in ledger.lineage.edges_to(me)] == [
            (RecordRef("pipeline_run", second.id), "contains")
        ]
        assert [(e.dst, e.relation) for e in ledger.lineage.edges_from(me)] == [(used, "used")]
        # A cache hit of a cache hit names the step run that computed the outputs.
        third = _start(ledger, project.id)
        again = store.record_cached(third, "train", cache_key=digest_of("k"), source=cached)
        assert again.source_step_run_id == computed.id
        assert store.find_cached(project.id, digest_of("k")) == computed  # never a hit
        running = store.record_step(third, "score", status="running")
        with pytest.raises(UsageError, match="succeeded or cached"):
            store.record_cached(third, "score", cache_key=None, source=running)
        with pytest.raises(UsageError, match="lineage relation"):
            store.record_cached(third, "score", cache_key=None, source=computed, links=[(used, "")])
        assert [s.step for s in store.steps(third.id)] == ["train", "score"]  # nothing written

    def test_find_cached_many_answers_many_keys_in_one_call(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        other = ledger.projects.ensure_project("other")
        store = ledger.pipelines
        run = _start(ledger, project.id)
        newest = {}
        for key in ("a", "a", "b"):
            step = store.record_step(run, key, status="running", cache_key=digest_of(key))
            newest[digest_of(key)] = store.end_step(step, status="succeeded", attempts=1)
        failed = store.record_step(run, "c", status="running", cache_key=digest_of("c"))
        store.end_step(failed, status="failed", attempts=1, error="boom")
        keys = [digest_of(k) for k in ("a", "b", "c", "d")]
        found = store.find_cached_many(project.id, keys)
        assert found == newest
        assert found == {
            k: hit for k in keys if (hit := store.find_cached(project.id, k)) is not None
        }
        assert store.find_cached_many(other.id, keys) == {}
        assert store.find_cached_many(project.id, []) == {}

    def test_a_firing_is_claimed_exactly_once_under_a_race(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.pipelines
        claims = race(
            8,
            lambda: store.claim_firing(
                project.id, "retrain.dataset", "v-123", reason="dataset flights@7 was added"
            ),
        )
        won = [c for c in claims if c is not None]
        assert len(won) == 1
        firing = won[0]
        assert (firing.trigger, firing.event_key, firing.pipeline_run_id) == (
            "retrain.dataset",
            "v-123",
            None,
        )
        assert firing.reason == "dataset flights@7 was added"
        # The same event stays claimed; another event, trigger or project is free.
        assert store.claim_firing(project.id, "retrain.dataset", "v-123", reason="again") is None
        assert store.claim_firing(project.id, "retrain.dataset", "v-124", reason="r") is not None
        assert store.claim_firing(project.id, "retrain.cron", "v-123", reason="r") is not None
        other = ledger.projects.ensure_project("other")
        assert store.claim_firing(other.id, "retrain.dataset", "v-123", reason="r") is not None
        run = _start(ledger, project.id, trigger="dataset", reason=firing.reason)
        store.attach_firing(firing.id, run.id)
        [attached] = store.firings(project.id, trigger="retrain.dataset", event_keys=["v-123"])
        assert (attached.id, attached.pipeline_run_id) == (firing.id, run.id)
        listed = store.firings(project.id, trigger="retrain.dataset")
        assert [f.event_key for f in listed] == ["v-124", "v-123"]  # newest first
        assert len(store.firings(project.id)) == 3
        assert store.firings(project.id, event_keys=[]) == []
        assert store.firings(project.id, limit=1)[0].trigger == "retrain.cron"

    def test_decisions_keep_their_evidence(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.pipelines
        run = _start(ledger, project.id)
        evidence = {"metric": "auc", "champion": 0.71, "challenger": 0.74, "margin": 0.01}
        gate = store.record_decision(
            project.id,
            kind="gate",
            subject="delays@4",
            outcome="passed",
            evidence=evidence,
            pipeline_run_id=run.id,
        )
        rollback = store.record_decision(
            project.id, kind="rollback", subject="delays@5", outcome="rolled_back", evidence={}
        )
        assert (gate.kind, gate.outcome, gate.evidence, gate.created_by) == (
            "gate",
            "passed",
            evidence,
            ledger.user,
        )
        assert store.decisions(project.id) == [rollback, gate]
        assert store.decisions(project.id, subject="delays@4") == [gate]
        assert store.decisions(project.id, pipeline_run_id=run.id) == [gate]
        with pytest.raises(UsageError, match="decision kind"):
            store.record_decision(project.id, kind="vote", subject="x", outcome="y", evidence={})
