"""The contract every ledger backend must pass, shipped for plugin authors.

Subclass :class:`LedgerContract` in a test module and provide a ``ledger`` fixture that
yields an open, freshly migrated :class:`plinth.ledger.Ledger`::

    import pytest
    from plinth.ledger import Ledger
    from plinth.testing.ledger_contract import LedgerContract

    @pytest.fixture
    def ledger(tmp_path):
        with Ledger.open(f"sqlite:///{tmp_path / 'plinth.db'}", user="tester") as opened:
            yield opened

    class TestMyLedger(LedgerContract):
        pass
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import pytest

from plinth.entities import Experiment, MetricPoint, RecordRef, Run
from plinth.errors import ConflictError, InvalidPathError, NotFoundError, UsageError
from plinth.ids import now_ms
from plinth.ledger import BLOB_REFERENCES, Ledger, head_revision
from plinth.testing.dataset_contract import DatasetStoreContract
from plinth.testing.feature_contract import FeatureStoreContract
from plinth.testing.model_contract import ModelStoreContract
from plinth.testing.monitor_contract import MonitoringContract
from plinth.testing.pipeline_contract import PipelineContract
from plinth.testing.races import digest_of, race
from plinth.testing.spec_contract import VersionedSpecContract

__all__ = ["LedgerContract", "digest_of", "race"]

T = TypeVar("T")


class LedgerContract(
    DatasetStoreContract,
    FeatureStoreContract,
    ModelStoreContract,
    MonitoringContract,
    PipelineContract,
    VersionedSpecContract,
):
    """Behaviour every ledger must show; test methods take the ``ledger`` fixture.

    The dataset store's tests come from :class:`DatasetStoreContract`, the model store's
    from :class:`ModelStoreContract`.
    """

    def experiment(self, ledger: Ledger, name: str = "exp") -> Experiment:
        project = ledger.projects.ensure_project("contract")
        return ledger.projects.ensure_experiment(project.id, name)

    def run(self, ledger: Ledger, **kwargs: Any) -> Run:
        return ledger.runs.create_run(self.experiment(ledger).id, **kwargs)

    # -- the ledger, projects and experiments ------------------------------------------------

    def test_open_ledger_is_migrated_and_answers(self, ledger: Ledger) -> None:
        assert ledger.schema_revision() == head_revision()
        ledger.ping()

    def test_ensure_project_creates_once_and_stamps_the_user(self, ledger: Ledger) -> None:
        before = now_ms()
        first = ledger.projects.ensure_project("flights")
        again = ledger.projects.ensure_project("flights")
        assert again == first
        assert first.created_by == ledger.user
        assert before <= first.created_at <= now_ms()
        assert ledger.projects.get_project("flights") == first
        with pytest.raises(NotFoundError, match="nope"):
            ledger.projects.get_project("nope")
        with pytest.raises(UsageError):
            ledger.projects.ensure_project("  ")

    def test_ensure_project_from_racing_threads_creates_one(self, ledger: Ledger) -> None:
        projects = race(8, lambda: ledger.projects.ensure_project("raced"))
        assert len({project.id for project in projects}) == 1

    def test_experiments_belong_to_their_project(self, ledger: Ledger) -> None:
        one = ledger.projects.ensure_project("one")
        two = ledger.projects.ensure_project("two")
        b = ledger.projects.ensure_experiment(one.id, "b")
        a = ledger.projects.ensure_experiment(one.id, "a")
        other = ledger.projects.ensure_experiment(two.id, "a")
        assert ledger.projects.ensure_experiment(one.id, "a") == a
        assert other.id != a.id
        assert ledger.projects.list_experiments(one.id) == [a, b]
        assert ledger.projects.get_experiment(b.id) == b
        with pytest.raises(NotFoundError):
            ledger.projects.get_experiment("missing")
        with pytest.raises(NotFoundError):
            ledger.projects.ensure_experiment("missing-project", "x")
        with pytest.raises(UsageError):
            ledger.projects.ensure_experiment(one.id, "")

    def test_ensure_experiment_from_racing_threads_creates_one(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("p")
        made = race(6, lambda: ledger.projects.ensure_experiment(project.id, "e"))
        assert len({experiment.id for experiment in made}) == 1

    # -- runs -------------------------------------------------------------------------------

    def test_create_run_starts_running(self, ledger: Ledger) -> None:
        source = {"commit": "abc123", "dirty": False, "argv": ["train.py", "--lr", "0.1"]}
        run = self.run(ledger, name="r1", source=source, host="box", pid=42, tags={"team": 7})
        assert (run.status, run.end_time, run.name) == ("running", None, "r1")
        assert (run.host, run.pid, run.created_by) == ("box", 42, ledger.user)
        assert run.source == source
        assert ledger.runs.get_run(run.id) == run
        assert ledger.runs.get_tags(run.id) == {"team": "7"}

    def test_create_run_checks_what_it_points_at(self, ledger: Ledger) -> None:
        with pytest.raises(NotFoundError, match="missing-exp"):
            ledger.runs.create_run("missing-exp")
        experiment = self.experiment(ledger)
        with pytest.raises(NotFoundError, match="parent run"):
            ledger.runs.create_run(experiment.id, parent_run_id="missing")
        with pytest.raises(NotFoundError, match="environment"):
            ledger.runs.create_run(experiment.id, environment_id="missing")
        assert ledger.runs.list_runs() == []
        env = ledger.environments.put(
            digest_of("env"), python="3.11.7", platform="linux", packages={}, extra={}
        )
        parent = ledger.runs.create_run(experiment.id, environment_id=env.id)
        child = ledger.runs.create_run(experiment.id, parent_run_id=parent.id)
        assert (parent.environment_id, child.parent_run_id) == (env.id, parent.id)
        ledger.runs.set_environment(child.id, env.id)
        assert ledger.runs.get_run(child.id).environment_id == env.id
        with pytest.raises(NotFoundError, match="environment"):
            ledger.runs.set_environment(child.id, "missing")
        with pytest.raises(NotFoundError, match="0190-no-such-run"):
            ledger.runs.get_run("0190-no-such-run")

    def test_create_run_writes_run_tags_and_params_all_or_nothing(self, ledger: Ledger) -> None:
        run = self.run(ledger, tags={"team": "a"}, params={"lr": 0.1, "layers": 3})
        assert ledger.runs.get_params(run.id) == {"lr": "0.1", "layers": "3"}
        assert ledger.runs.get_tags(run.id) == {"team": "a"}
        with pytest.raises(UsageError, match="param name"):
            self.run(ledger, name="bad", tags={"team": "b"}, params={"": 1})
        with pytest.raises(ConflictError, match=run.id):
            self.run(ledger, run_id=run.id)
        assert [r.id for r in ledger.runs.list_runs()] == [run.id]

    def test_experiments_and_environments_found_once_are_reused(self, ledger: Ledger) -> None:
        first = self.experiment(ledger, "cached")
        assert self.experiment(ledger, "cached") is first
        put: dict[str, Any] = {"python": "3.11.7", "platform": "linux", "packages": {}, "extra": {}}
        env = ledger.environments.put(digest_of("cached-env"), **put)
        assert ledger.environments.put(digest_of("cached-env"), **put) is env
        assert ledger.environments.get_by_digest(digest_of("cached-env")) == env

    def test_finish_stores_the_last_points_and_the_status_at_once(self, ledger: Ledger) -> None:
        run = self.run(ledger)
        points = [MetricPoint("loss", 1.0 / (i + 1), i, 1_000 + i, i) for i in range(5)]
        assert (
            ledger.runs.finish(run.id, "finished", points=points, end_time=run.start_time + 9) == 5
        )
        done = ledger.runs.get_run(run.id)
        assert (done.status, done.end_time, done.error) == ("finished", run.start_time + 9, None)
        assert [p.value for p in ledger.runs.metric_history(run.id, "loss")] == [
            p.value for p in points
        ]
        assert ledger.runs.latest_metrics(run.id) == {"loss": 0.2}
        # A replay (recovery after a crash that happened after the commit) adds nothing.
        assert ledger.runs.finish(run.id, "failed", points=points, error="E: x") == 0
        assert ledger.runs.get_run(run.id).status == "failed"
        with pytest.raises(UsageError, match="terminal"):
            ledger.runs.finish(run.id, "running")
        with pytest.raises(NotFoundError):
            ledger.runs.finish("missing", "finished", points=points)
        with pytest.raises(NotFoundError):
            ledger.runs.metric_history("missing", "loss")

    def test_list_runs_newest_first_with_filters(self, ledger: Ledger) -> None:
        one = self.experiment(ledger, "one")
        two = self.experiment(ledger, "two")
        made = [ledger.runs.create_run(exp.id) for exp in (one, two, one, one)]
        ledger.runs.set_status(made[2].id, "finished")
        assert [r.id for r in ledger.runs.list_runs()] == [r.id for r in reversed(made)]
        assert [r.id for r in ledger.runs.list_runs(experiment_id=one.id, limit=2)] == [
            made[3].id,
            made[2].id,
        ]
        assert [r.id for r in ledger.runs.list_runs(status="finished")] == [made[2].id]
        with pytest.raises(UsageError):
            ledger.runs.list_runs(status="sleeping")

    def test_set_status(self, ledger: Ledger) -> None:
        run = self.run(ledger)
        failed = ledger.runs.set_status(run.id, "failed", error="ValueError: boom")
        assert failed.status == "failed"
        assert failed.error == "ValueError: boom"
        assert failed.end_time is not None
        assert failed.end_time >= run.start_time
        done = ledger.runs.set_status(run.id, "finished", end_time=run.start_time + 5)
        assert (done.end_time, done.error) == (run.start_time + 5, None)
        assert ledger.runs.set_status(run.id, "running").end_time is None
        with pytest.raises(UsageError, match="sleeping"):
            ledger.runs.set_status(run.id, "sleeping")
        with pytest.raises(NotFoundError):
            ledger.runs.set_status("missing", "finished")

    # -- params and tags --------------------------------------------------------------------

    def test_params_are_strings_and_relogging_the_same_value_is_a_no_op(
        self, ledger: Ledger
    ) -> None:
        run = self.run(ledger)
        ledger.runs.log_params(run.id, {"lr": 0.1, "layers": 3, "opt": "adam", "flag": None})
        ledger.runs.log_params(run.id, {"lr": "0.1", "layers": 3})
        expected = {"lr": "0.1", "layers": "3", "opt": "adam", "flag": "None"}
        assert ledger.runs.get_params(run.id) == expected

    def test_changing_a_param_conflicts_names_both_values_and_writes_nothing(
        self, ledger: Ledger
    ) -> None:
        run = self.run(ledger)
        ledger.runs.log_params(run.id, {"lr": 0.1})
        with pytest.raises(ConflictError) as caught:
            ledger.runs.log_params(run.id, {"epochs": 10, "lr": 0.2, "seed": 1})
        for part in (run.id, "'lr'", "'0.1'", "'0.2'"):
            assert part in str(caught.value)
        assert ledger.runs.get_params(run.id) == {"lr": "0.1"}
        with pytest.raises(NotFoundError):
            ledger.runs.log_params("missing", {"a": 1})
        with pytest.raises(NotFoundError):
            ledger.runs.get_params("missing")

    def test_tags_can_change(self, ledger: Ledger) -> None:
        run = self.run(ledger)
        assert ledger.runs.get_tags(run.id) == {}
        ledger.runs.set_tags(run.id, {"stage": "dev", "owner": "ada"})
        ledger.runs.set_tags(run.id, {"stage": "prod"})
        assert ledger.runs.get_tags(run.id) == {"stage": "prod", "owner": "ada"}
        with pytest.raises(NotFoundError):
            ledger.runs.set_tags("missing", {"a": 1})

    # -- metrics ----------------------------------------------------------------------------

    def test_metric_history_is_ordered_by_step_timestamp_seq(self, ledger: Ledger) -> None:
        run = self.run(ledger)
        points = [
            MetricPoint("loss", 0.5, step=2, timestamp=10, seq=0),
            MetricPoint("loss", 0.9, step=1, timestamp=20, seq=1),
            MetricPoint("acc", 0.1, step=1, timestamp=20, seq=2),
            MetricPoint("loss", 0.7, step=1, timestamp=20, seq=3),
            MetricPoint("loss", 0.8, step=1, timestamp=5, seq=4),
        ]
        assert ledger.runs.log_metrics(run.id, points) == 5
        history = ledger.runs.metric_history(run.id, "loss")
        assert [p.seq for p in history] == [4, 1, 3, 0]
        assert history[0] == points[4]
        assert ledger.runs.metric_history(run.id, "nothing") == []

    def test_replaying_a_metric_batch_stores_nothing_new(self, ledger: Ledger) -> None:
        run = self.run(ledger)
        batch = [MetricPoint("loss", 1.0 / (i + 1), i, 1000 + i, i) for i in range(50)]
        assert ledger.runs.log_metrics(run.id, batch) == 50
        assert ledger.runs.log_metrics(run.id, batch) == 0
        more = [*batch[40:], MetricPoint("loss", 0.0, 50, 2000, 50)]
        assert ledger.runs.log_metrics(run.id, more) == 1
        assert len(ledger.runs.metric_history(run.id, "loss")) == 51
        assert ledger.runs.max_seq(run.id) == 50

    def test_a_hundred_thousand_points_in_one_batch(self, ledger: Ledger) -> None:
        run = self.run(ledger)
        keys = ("loss", "acc", "lr", "grad_norm")
        points = [MetricPoint(keys[i % 4], i * 0.5, i // 4, 10 * i, i) for i in range(100_000)]
        assert ledger.runs.log_metrics(run.id, points) == 100_000
        assert ledger.runs.max_seq(run.id) == 99_999
        history = ledger.runs.metric_history(run.id, "acc")
        assert len(history) == 25_000
        assert history[-1] == points[99_997]
        assert ledger.runs.log_metrics(run.id, points) == 0

    def test_latest_metrics_takes_the_highest_step_then_timestamp_then_seq(
        self, ledger: Ledger
    ) -> None:
        run = self.run(ledger)
        assert ledger.runs.max_seq(run.id) == -1
        assert ledger.runs.latest_metrics(run.id) == {}
        # (key, value, step, timestamp, seq)
        rows = [("loss", 0.3, 9, 1, 0), ("loss", 0.2, 10, 1, 1), ("loss", 0.25, 10, 2, 2)]
        rows += [("loss", 0.1, 3, 99, 3), ("acc", 0.5, 1, 1, 5), ("acc", 0.6, 1, 1, 4)]
        ledger.runs.log_metrics(run.id, [MetricPoint(*row) for row in rows])
        assert ledger.runs.latest_metrics(run.id) == {"loss": 0.25, "acc": 0.5}

    def test_nan_and_infinity_survive(self, ledger: Ledger) -> None:
        run = self.run(ledger)
        ledger.runs.log_metrics(
            run.id,
            [MetricPoint("loss", math.nan, 0, 1, 0), MetricPoint("loss", math.inf, 1, 2, 1)],
        )
        values = [p.value for p in ledger.runs.metric_history(run.id, "loss")]
        assert math.isnan(values[0])
        assert values[1] == math.inf
        assert ledger.runs.latest_metrics(run.id) == {"loss": math.inf}

    def test_metrics_need_a_run_and_well_formed_points(self, ledger: Ledger) -> None:
        with pytest.raises(NotFoundError):
            ledger.runs.log_metrics("missing", [MetricPoint("a", 1.0, 0, 0, 0)])
        with pytest.raises(NotFoundError):
            ledger.runs.metric_history("missing", "a")
        run = self.run(ledger)
        bad = [MetricPoint("a", 1.0, 0, 0, 0), MetricPoint("a", 1.0, 0, 0, -1)]
        with pytest.raises(UsageError):
            ledger.runs.log_metrics(run.id, bad)
        assert ledger.runs.max_seq(run.id) == -1

    # -- artifacts --------------------------------------------------------------------------

    def test_record_and_read_artifacts(self, ledger: Ledger) -> None:
        owner = RecordRef("run", self.run(ledger).id)
        digest = digest_of("weights")
        made = ledger.artifacts.record(owner, "./model//weights.bin", digest, 12, "x/bin")
        assert made.path == "model/weights.bin"
        assert (made.digest, made.size, made.media_type) == (digest, 12, "x/bin")
        assert (made.owner, made.created_by) == (owner, ledger.user)
        again = ledger.artifacts.record(owner, "model/weights.bin", digest, 12)
        assert again == made
        ledger.artifacts.record(owner, "a.txt", digest_of("a"), 1)
        assert ledger.artifacts.get(owner, "model/weights.bin") == made
        assert [a.path for a in ledger.artifacts.list(owner)] == ["a.txt", "model/weights.bin"]
        assert ledger.artifacts.list(RecordRef("run", "other")) == []
        with pytest.raises(NotFoundError):
            ledger.artifacts.get(owner, "nope.txt")
        with pytest.raises(UsageError):
            ledger.artifacts.record(owner, "b", "not-a-digest", 1)
        with pytest.raises(UsageError):
            ledger.artifacts.record(owner, "b", digest_of("b"), -1)

    def test_repointing_an_artifact_conflicts_naming_both_digests(self, ledger: Ledger) -> None:
        owner = RecordRef("run", self.run(ledger).id)
        old, new = digest_of("old"), digest_of("new")
        ledger.artifacts.record(owner, "plot.png", old, 3)
        with pytest.raises(ConflictError) as caught:
            ledger.artifacts.record(owner, "plot.png", new, 3)
        assert old in str(caught.value)
        assert new in str(caught.value)
        assert ledger.artifacts.get(owner, "plot.png").digest == old

    def test_record_many_is_one_all_or_nothing_batch(self, ledger: Ledger) -> None:
        owner = RecordRef("run", self.run(ledger).id)
        items = [(f"files/{i:04d}.txt", digest_of(str(i)), i, "text/plain") for i in range(1200)]
        stored = ledger.artifacts.record_many(owner, items)
        assert [(a.path, a.digest, a.size, a.media_type) for a in stored] == items
        assert ledger.artifacts.list(owner) == stored
        assert ledger.artifacts.record_many(owner, items[:3]) == stored[:3]  # idempotent
        # Rows already recorded and new ones in one batch: the new ones are added.
        more = [*items[1195:], ("files/1200.txt", digest_of("1200"), 1200, None)]
        assert ledger.artifacts.record_many(owner, more)[:5] == stored[1195:]
        assert len(ledger.artifacts.list(owner)) == 1201
        clash = [
            ("new/ok.txt", digest_of("ok"), 2, None),
            ("files/0001.txt", digest_of("x"), 1, None),
        ]
        with pytest.raises(ConflictError):
            ledger.artifacts.record_many(owner, clash)
        with pytest.raises(InvalidPathError):
            ledger.artifacts.record_many(
                owner, [("b.txt", digest_of("b"), 1, None), ("../x", digest_of("x"), 1, None)]
            )
        assert len(ledger.artifacts.list(owner)) == 1201, "a failed batch writes nothing"

    @pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "", "a\\b", "%2e%2e/x"])
    def test_artifact_paths_cannot_escape(self, ledger: Ledger, path: str) -> None:
        owner = RecordRef("run", self.run(ledger).id)
        with pytest.raises(InvalidPathError):
            ledger.artifacts.record(owner, path, digest_of("x"), 1)
        assert ledger.artifacts.list(owner) == []

    # -- environments -----------------------------------------------------------------------

    def test_environments_are_stored_once_per_digest(self, ledger: Ledger) -> None:
        digest, packages, extra = digest_of("env-1"), {"numpy": "2.0.0"}, {"gpus": ["H100"]}
        put = ledger.environments.put
        made = race(
            6, lambda: put(digest, python="3.11", platform="linux", packages=packages, extra=extra)
        )
        ids = [env.id for env in made]
        assert len(set(ids)) == 1
        env = ledger.environments.get(ids[0])  # packages and extra survive the round trip
        assert (env.packages, env.extra, env.python) == (packages, extra, "3.11")
        assert ledger.environments.get_by_digest(digest) == env
        with pytest.raises(NotFoundError):
            ledger.environments.get("missing")
        with pytest.raises(NotFoundError):
            ledger.environments.get_by_digest(digest_of("other"))

    # -- lineage ----------------------------------------------------------------------------

    def test_lineage_edges_are_idempotent(self, ledger: Ledger) -> None:
        run, data = RecordRef("run", "r1"), RecordRef("dataset_version", "d1")
        edge = ledger.lineage.add(run, data, "used")
        assert ledger.lineage.add(run, data, "used") == edge
        assert (edge.src, edge.dst, edge.relation) == (run, data, "used")
        assert edge.created_by == ledger.user
        assert ledger.lineage.edges_from(run) == [edge]
        assert ledger.lineage.edges_to(data) == [edge]
        assert ledger.lineage.edges_to(run) == []

    def test_lineage_walks_follow_the_flow_of_data(self, ledger: Ledger) -> None:
        raw, clean = RecordRef("dataset_version", "raw"), RecordRef("dataset_version", "clean")
        prep, train = RecordRef("run", "prep"), RecordRef("run", "train")
        model, deploy = RecordRef("model_version", "m1"), RecordRef("deployment", "d1")
        flow = [(prep, raw, "used"), (prep, clean, "produced"), (train, clean, "used")]
        flow += [(train, model, "produced"), (model, deploy, "deployed")]
        for src, dst, relation in flow:
            ledger.lineage.add(src, dst, relation)
        up = [(e.src, e.dst) for e in ledger.lineage.upstream(deploy)]
        assert up == [(model, deploy), (train, model), (train, clean), (prep, clean), (prep, raw)]
        down = [(e.src, e.dst) for e in ledger.lineage.downstream(raw)]
        assert down == [(prep, raw), (prep, clean), (train, clean), (train, model), (model, deploy)]
        assert len(ledger.lineage.upstream(deploy, max_depth=2)) == 2
        assert ledger.lineage.upstream(raw) == []
        assert ledger.lineage.downstream(deploy) == []

    def test_lineage_walks_end_on_cycles_and_share_diamonds(self, ledger: Ledger) -> None:
        a, b, c, d = (RecordRef("node", name) for name in "abcd")
        for src, dst in ((a, b), (b, c), (c, a), (a, d), (d, c)):
            ledger.lineage.add(src, dst, "produced")
        down = ledger.lineage.downstream(a, max_depth=50)
        assert len(down) == 5
        assert len(ledger.lineage.upstream(c, max_depth=50)) == 5
        assert ledger.lineage.downstream(a, max_depth=0) == []
        with pytest.raises(UsageError):
            ledger.lineage.downstream(a, max_depth=-1)

    # -- gc ---------------------------------------------------------------------------------

    def test_referenced_digests_cover_every_blob_reference(self, ledger: Ledger) -> None:
        assert ("artifacts", "digest") in BLOB_REFERENCES
        assert ledger.gc.referenced_digests() == set()
        x, y = digest_of("x"), digest_of("y")
        ledger.artifacts.record(RecordRef("run", "r1"), "a", x, 1)
        ledger.artifacts.record(RecordRef("run", "r2"), "b", x, 1)
        ledger.artifacts.record(RecordRef("run", "r2"), "c", y, 1)
        assert ledger.gc.referenced_digests() == {x, y}

    def test_gc_events_are_logged(self, ledger: Ledger) -> None:
        first = ledger.gc.record(2, 300, [digest_of("b"), digest_of("a")])
        second = ledger.gc.record(0, 0, [])
        assert first.digests == sorted([digest_of("a"), digest_of("b")])
        assert first.created_by == ledger.user
        assert ledger.gc.list_events() == [second, first]
        with pytest.raises(UsageError):
            ledger.gc.record(-1, 0, [])
