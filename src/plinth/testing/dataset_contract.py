"""The contract every dataset store must pass: numbering, dedupe, references, tags, gc.

:class:`plinth.testing.ledger_contract.LedgerContract` includes it (``ledger.datasets`` on
every ledger backend); a subclass may override :meth:`DatasetStoreContract.datasets` to test
another implementation over the same ledger (plinth's own sqlite3 fast path does).
"""

from __future__ import annotations

from typing import Any

import pytest

from plinth.entities import Dataset
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ledger import BLOB_REFERENCES, Ledger

__all__ = ["DatasetStoreContract"]


def _digest(n: int) -> str:
    return f"{n:064x}"


class DatasetStoreContract:
    """Test methods take the ``ledger`` fixture (an open, migrated, empty ledger)."""

    def datasets(self, ledger: Ledger) -> Any:
        """The store under test; called once per thread in the racing tests."""
        return ledger.datasets

    def dataset(self, ledger: Ledger, name: str = "flights") -> Dataset:
        project = ledger.projects.ensure_project("contract")
        dataset: Dataset = self.datasets(ledger).ensure(project.id, name)
        return dataset

    def add(self, ledger: Ledger, dataset: Dataset, n: int, **kwargs: Any) -> Any:
        values = {"kind": "directory", "size": 10 * n, "file_count": n, **kwargs}
        return self.datasets(ledger).add_version(dataset, manifest_digest=_digest(n), **values)

    def test_datasets_are_created_once_per_project_and_name(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        one = ledger.projects.ensure_project("one")
        two = ledger.projects.ensure_project("two")
        first = store.ensure(one.id, "flights")
        assert store.ensure(one.id, "flights") == first
        assert (first.versions, first.created_by) == (0, ledger.user)
        assert store.ensure(two.id, "flights").id != first.id
        store.ensure(one.id, "airports")
        assert [d.name for d in store.list(one.id)] == ["airports", "flights"]
        assert store.get(one.id, "flights") == first
        with pytest.raises(NotFoundError, match="no dataset named 'nope'") as caught:
            store.get(one.id, "nope")
        assert "airports, flights" in caught.value.hint
        for bad in ("", "a b", "x@1", "../x", "-x"):
            with pytest.raises(UsageError, match="invalid dataset name"):
                store.ensure(one.id, bad)

    def test_versions_are_numbered_with_their_parent(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        dataset = self.dataset(ledger)
        schema = [{"name": "a", "type": "int64"}, {"name": "b", "type": "string"}]
        v1, created = self.add(
            ledger, dataset, 1, message="first", kind="table", row_count=7, schema=schema
        )
        assert created
        assert (v1.number, v1.parent, v1.message, v1.dataset) == (1, None, "first", "flights")
        assert (v1.kind, v1.row_count, v1.schema, v1.size, v1.file_count) == (
            "table",
            7,
            schema,
            10,
            1,
        )
        assert v1.created_by == ledger.user
        assert v1.ref == "flights@1"
        v2, created = self.add(ledger, dataset, 2)
        assert created
        assert (v2.number, v2.parent, v2.message, v2.row_count, v2.schema) == (
            2,
            1,
            None,
            None,
            None,
        )
        assert store.resolve(dataset, 1) == v1
        assert store.get_version_by_id(v2.id) == v2
        assert [v.number for v in store.list_versions(dataset)] == [2, 1]
        assert [v.number for v in store.list_versions(dataset, limit=1)] == [2]
        assert store.latest_versions(dataset.project_id) == {"flights": v2}
        assert store.get(dataset.project_id, "flights").versions == 2

    def test_the_latest_manifest_again_creates_no_version(self, ledger: Ledger) -> None:
        dataset = self.dataset(ledger)
        v1, _ = self.add(ledger, dataset, 1)
        again, created = self.add(ledger, dataset, 1, message="same again")
        assert not created
        assert again == v1
        v2, created = self.add(ledger, dataset, 2)
        assert (v2.number, created) == (2, True)
        v3, created = self.add(ledger, dataset, 1)  # back to v1's content: a new version
        assert (v3.number, v3.parent, created) == (3, 2, True)
        other_kind, created = self.add(ledger, dataset, 1, kind="file")
        assert (other_kind.number, created) == (4, True)

    def test_references_by_number_latest_and_tag(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        dataset = self.dataset(ledger)
        with pytest.raises(NotFoundError, match="has no versions yet"):
            store.resolve(dataset)
        v1, _ = self.add(ledger, dataset, 1)
        self.add(ledger, dataset, 2)
        assert store.resolve(dataset).number == 2
        assert store.resolve(dataset, "latest").number == 2
        assert store.resolve(dataset, "1") == v1
        assert store.resolve(dataset, "v1") == v1
        tagged = store.set_tag(dataset, "gold", 1)
        assert tagged.tags == ("gold",)
        assert store.resolve(dataset, "gold").number == 1
        assert store.set_tag(dataset, "gold", "1").number == 1  # the same again: no-op
        with pytest.raises(ConflictError, match="is on version 1"):
            store.set_tag(dataset, "gold", 2)
        assert store.set_tag(dataset, "gold", 2, move=True).number == 2
        store.set_tag(dataset, "silver", "latest")
        assert store.tags(dataset) == {"gold": 2, "silver": 2}
        assert store.resolve(dataset, 2).tags == ("gold", "silver")
        assert [v.tags for v in store.list_versions(dataset)] == [("gold", "silver"), ()]
        with pytest.raises(NotFoundError, match="has no version 3"):
            store.resolve(dataset, 3)
        with pytest.raises(NotFoundError, match="has no tag 'bronze'"):
            store.resolve(dataset, "bronze")
        for bad in ("latest", "1x", "", "a b"):
            with pytest.raises(UsageError):
                store.set_tag(dataset, bad, 1)
        with pytest.raises(UsageError):
            store.resolve(dataset, 0)

    def test_racing_writers_get_distinct_consecutive_numbers(self, ledger: Ledger) -> None:
        from plinth.testing.races import race

        dataset = self.dataset(ledger)
        counter = iter(range(1, 100))

        def add() -> Any:
            n = next(counter)
            return self.datasets(ledger).add_version(
                dataset, kind="file", manifest_digest=_digest(n), size=n, file_count=1
            )[0]

        made = race(4, add)
        assert sorted(v.number for v in made) == [1, 2, 3, 4]
        for v in self.datasets(ledger).list_versions(dataset):
            assert v.parent == (v.number - 1 or None)

    def test_racing_writers_of_one_manifest_make_one_version(self, ledger: Ledger) -> None:
        from plinth.testing.races import race

        dataset = self.dataset(ledger)
        made = race(
            4,
            lambda: self.datasets(ledger).add_version(
                dataset, kind="file", manifest_digest=_digest(7), size=1, file_count=1
            ),
        )
        assert sorted(created for _, created in made) == [False, False, False, True]
        assert {v.number for v, _ in made} == {1}

    def test_gc_keeps_manifests_and_the_files_they_list(self, ledger: Ledger) -> None:
        assert ("dataset_versions", "manifest_digest") in BLOB_REFERENCES
        assert ("dataset_blobs", "digest") in BLOB_REFERENCES
        dataset = self.dataset(ledger)
        self.add(ledger, dataset, 1, new_digests=[_digest(100), _digest(101)])
        self.add(ledger, dataset, 2, new_digests=[_digest(101), _digest(102)])
        expected = {_digest(n) for n in (1, 2, 100, 101, 102)}
        assert expected <= ledger.gc.referenced_digests()
        assert self.datasets(ledger).referenced_blobs(dataset) == {
            _digest(n) for n in (100, 101, 102)
        }

    def test_malformed_versions_are_refused(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        dataset = self.dataset(ledger)
        good: dict[str, Any] = {
            "kind": "file",
            "manifest_digest": _digest(1),
            "size": 1,
            "file_count": 1,
        }
        for key, bad in (("kind", "folder"), ("manifest_digest", "xyz"), ("size", -1)):
            with pytest.raises(UsageError):
                store.add_version(dataset, **{**good, key: bad})
        assert store.list_versions(dataset) == []

    def test_versions_start_published_or_quarantined(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        dataset = self.dataset(ledger)
        v1, _ = self.add(ledger, dataset, 1)
        v2, _ = self.add(ledger, dataset, 2, status="quarantined", profile_digest=_digest(50))
        assert (v1.status, v1.profile_digest) == ("published", None)
        assert (v2.status, v2.profile_digest) == ("quarantined", _digest(50))
        assert store.resolve(dataset, 2) == v2
        with pytest.raises(UsageError, match="cannot be erased"):
            self.add(ledger, dataset, 3, status="erased")
        with pytest.raises(UsageError, match="status must be one of"):
            self.add(ledger, dataset, 3, status="bogus")
        with pytest.raises(UsageError, match="profile digest"):
            self.add(ledger, dataset, 3, profile_digest="nope")
        assert [v.number for v in store.list_versions(dataset)] == [2, 1]

    def test_status_and_profile_can_be_set_later(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        dataset = self.dataset(ledger)
        v1, _ = self.add(ledger, dataset, 1, status="quarantined")
        v2, _ = self.add(ledger, dataset, 2)
        store.set_status([v1.id], "published")
        store.set_profile(v2.id, _digest(60))
        assert store.resolve(dataset, 1).status == "published"
        assert store.resolve(dataset, 2).profile_digest == _digest(60)
        assert ("dataset_versions", "profile_digest") in BLOB_REFERENCES
        assert _digest(60) in ledger.gc.referenced_digests()
        with pytest.raises(NotFoundError, match="no dataset version"):
            store.set_status([v1.id, "0" * 36], "quarantined")
        assert store.resolve(dataset, 1).status == "published", "a failed call changes nothing"
        with pytest.raises(NotFoundError, match="no dataset version"):
            store.set_profile("0" * 36, _digest(61))
        with pytest.raises(UsageError, match="status must be one of"):
            store.set_status([v1.id], "gone")

    def test_an_erasure_marks_versions_releases_blobs_and_is_audited(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        dataset = self.dataset(ledger)
        self.add(ledger, dataset, 1, new_digests=[_digest(100), _digest(101)])
        self.add(ledger, dataset, 2, new_digests=[_digest(102)])
        v3, _ = self.add(ledger, dataset, 3, new_digests=[_digest(103)])
        # a monitor report charted against flights@2 (its HTML names top categories)
        report_args: dict[str, Any] = {
            "kind": "monitor",
            "monitor": "m",
            "status": "ok",
            "rows": 1,
            "results": [],
        }
        against_v2 = ledger.monitoring.record_report(
            dataset.project_id, reference="flights@2", report_digest=_digest(110), **report_args
        )
        against_v3 = ledger.monitoring.record_report(
            dataset.project_id, reference="flights@3", report_digest=_digest(111), **report_args
        )
        of_v1 = ledger.monitoring.record_report(  # an ad-hoc drift report of flights@1
            dataset.project_id,
            reference="flights@3",
            report_digest=_digest(112),
            **{**report_args, "kind": "drift", "monitor": "flights@1"},
        )
        erasure = store.record_erasure(
            dataset,
            predicate="user_id = 42",
            message="erasure request",
            rows_removed=3,
            new_number=3,
            erased_numbers=[1, 2],
            released_digests=[_digest(100)],
        )
        assert (erasure.predicate, erasure.message, erasure.rows_removed) == (
            "user_id = 42",
            "erasure request",
            3,
        )
        assert (erasure.new_number, erasure.erased_numbers) == (3, (1, 2))
        assert (erasure.released_blobs, erasure.created_by) == (
            (_digest(100), _digest(110), _digest(112)),
            ledger.user,
        )
        assert ledger.monitoring.get_report(of_v1.id).report_digest is None
        assert ledger.monitoring.get_report(against_v2.id).report_digest is None
        assert ledger.monitoring.get_report(against_v3.id).report_digest == _digest(111)
        assert _digest(110) not in ledger.gc.referenced_digests()
        assert [v.status for v in store.list_versions(dataset)] == [
            "published",
            "erased",
            "erased",
        ]
        assert store.referenced_blobs(dataset) == {_digest(n) for n in (101, 102, 103)}
        assert _digest(100) not in ledger.gc.referenced_digests()
        assert store.erasures(dataset) == [erasure]
        with pytest.raises(ConflictError, match="erased dataset version cannot change"):
            store.set_status([store.resolve(dataset, 1).id, v3.id], "published")
        assert store.resolve(dataset, 3).status == "published"

    def test_a_bad_erasure_writes_nothing(self, ledger: Ledger) -> None:
        store = self.datasets(ledger)
        dataset = self.dataset(ledger)
        self.add(ledger, dataset, 1, new_digests=[_digest(100)])
        good: dict[str, Any] = {
            "predicate": "id = 1",
            "message": "why",
            "rows_removed": 1,
            "new_number": None,
            "erased_numbers": [1],
            "released_digests": [_digest(100)],
        }
        for key, bad in (
            ("predicate", " "),
            ("message", ""),
            ("rows_removed", -1),
            ("erased_numbers", [1, 7]),
            ("released_digests", ["xyz"]),
        ):
            with pytest.raises((UsageError, NotFoundError)):
                store.record_erasure(dataset, **{**good, key: bad})
        assert store.erasures(dataset) == []
        assert store.resolve(dataset, 1).status == "published"
        assert store.referenced_blobs(dataset) == {_digest(100)}
