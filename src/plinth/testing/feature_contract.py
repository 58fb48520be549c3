"""The contract for feature-store records: definition versions by digest, materializations
and pushed batches.

Mixed into :class:`plinth.testing.ledger_contract.LedgerContract`, so it runs on every
ledger backend; test methods take the ``ledger`` fixture.
"""

from __future__ import annotations

import pytest

from plinth.errors import NotFoundError, UsageError
from plinth.ledger import BLOB_REFERENCES, Ledger
from plinth.testing.races import digest_of, race

__all__ = ["FeatureStoreContract"]

_VIEW = {"entities": ["plane"], "source": "planes", "timestamp": "ts", "features": {"a": "int64"}}


class FeatureStoreContract:
    """Definitions, materializations and pushes on one ledger."""

    def test_definitions_are_versioned_by_digest(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.features
        first = store.save_definition(project.id, "feature_view", "planes", digest_of("1"), _VIEW)
        again = store.save_definition(project.id, "feature_view", "planes", digest_of("1"), {})
        changed = {**_VIEW, "features": {"a": "float64"}}
        second = store.save_definition(
            project.id, "feature_view", "planes", digest_of("2"), changed
        )
        # Same name, other kind: its own numbering.
        entity = store.save_definition(
            project.id, "entity", "planes", digest_of("1"), {"join_keys": ["tailnum"]}
        )
        assert (first.number, again.id, second.number, entity.number) == (1, first.id, 2, 1)
        assert again.spec == _VIEW  # the first spec stays; the digest names it
        assert store.get_definition(project.id, "feature_view", "planes") == second
        assert store.get_definition(project.id, "feature_view", "planes", 1) == first
        assert store.get_definition_by_id(second.id) == second
        assert store.versions(project.id, "feature_view", "planes") == [first, second]
        latest = store.latest_definitions(project.id)
        assert [(d.kind, d.name, d.number) for d in latest] == [
            ("entity", "planes", 1),
            ("feature_view", "planes", 2),
        ]
        assert store.latest_definitions(project.id, "entity") == [entity]
        other = ledger.projects.ensure_project("other")
        assert store.latest_definitions(other.id) == []
        assert store.find_definition(other.id, "feature_view", "planes") is None
        with pytest.raises(NotFoundError, match="feature view 'planes' version 9"):
            store.get_definition(project.id, "feature_view", "planes", 9)
        with pytest.raises(UsageError, match="kind must be one of"):
            store.save_definition(project.id, "view", "x", digest_of("1"), {})
        with pytest.raises(UsageError, match="digest"):
            store.save_definition(project.id, "entity", "x", "not-a-digest", {})

    def test_applying_an_earlier_spec_again_makes_it_current(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.features
        first = store.save_definition(project.id, "feature_view", "v", digest_of("1"), _VIEW)
        second = store.save_definition(project.id, "feature_view", "v", digest_of("2"), _VIEW)
        assert store.get_definition(project.id, "feature_view", "v") == second
        reverted = store.save_definition(project.id, "feature_view", "v", digest_of("1"), _VIEW)
        assert reverted == first  # the same version, number 1: no third version
        assert store.get_definition(project.id, "feature_view", "v") == first
        assert store.latest_definitions(project.id) == [first]
        assert [d.number for d in store.versions(project.id, "feature_view", "v")] == [1, 2]
        again = store.save_definition(project.id, "feature_view", "v", digest_of("2"), _VIEW)
        assert store.get_definition(project.id, "feature_view", "v") == again == second

    def test_concurrent_apply_of_one_definition_is_one_version(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        results = race(
            4,
            lambda: ledger.features.save_definition(
                project.id, "feature_view", "planes", digest_of("same"), _VIEW
            ),
        )
        assert {r.id for r in results} == {results[0].id}
        assert results[0].number == 1

    def test_materializations_and_pushes_are_appended(self, ledger: Ledger) -> None:
        project = ledger.projects.ensure_project("contract")
        store = ledger.features
        view = store.save_definition(project.id, "feature_view", "planes", digest_of("1"), _VIEW)
        entity = store.save_definition(project.id, "entity", "plane", digest_of("e"), {})
        assert store.last_materialization(project.id, "planes", view.id) is None
        m1 = store.record_materialization(view, start_ms=None, end_ms=10, rows=5, store="sqlite")
        m2 = store.record_materialization(view, start_ms=10, end_ms=20, rows=1, store="sqlite")
        assert store.last_materialization(project.id, "planes", view.id) == m2
        assert store.materializations(project.id, "planes") == [m2, m1]
        assert (m1.start_ms, m1.end_ms, m1.rows, m1.created_by) == (None, 10, 5, ledger.user)
        with pytest.raises(UsageError, match=r"ends .* before it starts"):
            store.record_materialization(view, start_ms=30, end_ms=20, rows=0, store="sqlite")
        with pytest.raises(UsageError, match="only feature views"):
            store.record_materialization(entity, start_ms=None, end_ms=1, rows=0, store="x")
        with pytest.raises(UsageError, match=">= 0"):
            store.record_materialization(view, start_ms=None, end_ms=1, rows=-1, store="x")
        p1 = store.record_push(view, digest=digest_of("rows1"), rows=3)
        p2 = store.record_push(view, digest=digest_of("rows2"), rows=1)
        assert store.pushes(project.id, "planes") == [p1, p2]
        assert store.pushes(project.id, "other") == []
        assert ("feature_pushes", "digest") in BLOB_REFERENCES
        assert digest_of("rows1") in ledger.gc.referenced_digests()
        with pytest.raises(UsageError, match="digest"):
            store.record_push(view, digest="zz", rows=1)
