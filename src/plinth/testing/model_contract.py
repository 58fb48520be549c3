"""The contract every model store must pass: numbering, aliases by compare-and-swap, audit.

:class:`plinth.testing.ledger_contract.LedgerContract` includes it (``ledger.models`` on
every ledger backend).
"""

from __future__ import annotations

from typing import Any

import pytest

from plinth.entities import Model, ModelVersion
from plinth.errors import ConflictError, NotFoundError, UsageError
from plinth.ids import now_ms
from plinth.ledger import BLOB_REFERENCES, Ledger

__all__ = ["ModelStoreContract"]


def _digest(n: int) -> str:
    return f"{n:064x}"


class ModelStoreContract:
    """Test methods take the ``ledger`` fixture (an open, migrated, empty ledger)."""

    def model(self, ledger: Ledger, name: str = "delays") -> Model:
        project = ledger.projects.ensure_project("contract")
        return ledger.models.ensure(project.id, name)

    def register(self, ledger: Ledger, model: Model, n: int, **kwargs: Any) -> ModelVersion:
        values: dict[str, Any] = {"flavor": "sklearn", **kwargs}
        return ledger.models.register(model, manifest_digest=_digest(n), **values)

    def versions(self, ledger: Ledger, count: int) -> Model:
        model = self.model(ledger)
        for n in range(1, count + 1):
            self.register(ledger, model, n)
        return model

    def test_models_are_created_once_per_project_and_name(self, ledger: Ledger) -> None:
        store = ledger.models
        one = ledger.projects.ensure_project("one")
        two = ledger.projects.ensure_project("two")
        first = store.ensure(one.id, "delays")
        assert store.ensure(one.id, "delays") == first
        assert (first.versions, first.created_by, first.description) == (0, ledger.user, None)
        assert store.ensure(two.id, "delays").id != first.id
        store.ensure(one.id, "arrivals")
        assert [m.name for m in store.list(one.id)] == ["arrivals", "delays"]
        assert store.get(one.id, "delays") == first
        with pytest.raises(NotFoundError, match="no model named 'nope'") as caught:
            store.get(one.id, "nope")
        assert "arrivals, delays" in caught.value.hint
        for bad in ("", "a b", "x@1", "../x", "-x"):
            with pytest.raises(UsageError, match="invalid model name"):
                store.ensure(one.id, bad)

    def test_versions_are_numbered_and_keep_what_was_registered(self, ledger: Ledger) -> None:
        store = ledger.models
        model = self.model(ledger)
        signature = {"inputs": [{"name": "distance", "type": "double"}], "outputs": None}
        before = now_ms()
        v1 = self.register(
            ledger,
            model,
            1,
            run_id="run-1",
            signature=signature,
            environment_id="env-1",
            metrics={"rmse": 0.5, "nan": float("nan"), "inf": float("inf")},
            trusted_digests=[_digest(9), _digest(8), _digest(9)],
            description="first",
        )
        assert (v1.number, v1.version, v1.ref, v1.model) == (1, 1, "delays@1", "delays")
        assert (v1.flavor, v1.run_id, v1.environment_id, v1.description) == (
            "sklearn",
            "run-1",
            "env-1",
            "first",
        )
        assert v1.signature == signature
        assert v1.trusted_digests == (_digest(8), _digest(9))
        assert v1.metrics is not None
        assert v1.metrics["rmse"] == 0.5
        assert v1.metrics["inf"] == float("inf")
        assert v1.metrics["nan"] != v1.metrics["nan"]
        assert v1.created_by == ledger.user
        assert before <= v1.created_at <= now_ms()
        v2 = self.register(ledger, model, 1)  # the same manifest again: still a new version
        assert (v2.number, v2.run_id, v2.metrics, v2.signature, v2.trusted_digests) == (
            2,
            None,
            None,
            None,
            (),
        )
        stored = store.resolve(model, 1)
        assert (stored.id, stored.signature, stored.trusted_digests) == (
            v1.id,
            signature,
            v1.trusted_digests,
        )
        assert store.get_version_by_id(v2.id) == v2
        assert [v.number for v in store.list_versions(model)] == [2, 1]
        assert [v.number for v in store.list_versions(model, limit=1)] == [2]
        assert store.get(model.project_id, "delays").versions == 2
        with pytest.raises(NotFoundError, match="no model version with id"):
            store.get_version_by_id("0" * 36)

    def test_twenty_racing_registrations_get_exactly_one_to_twenty(self, ledger: Ledger) -> None:
        from plinth.testing.races import race

        model = self.model(ledger)
        made = race(20, lambda: self.register(ledger, model, 1))
        assert sorted(v.number for v in made) == list(range(1, 21))
        assert len({v.id for v in made}) == 20
        assert [v.number for v in ledger.models.list_versions(model)] == list(range(20, 0, -1))
        assert ledger.models.get(model.project_id, model.name).versions == 20

    def test_resolve_by_number_latest_and_alias(self, ledger: Ledger) -> None:
        store = ledger.models
        model = self.model(ledger)
        with pytest.raises(NotFoundError, match="has no versions yet"):
            store.resolve(model)
        self.versions(ledger, 3)
        assert store.resolve(model).number == 3
        assert store.resolve(model, "latest").number == 3
        assert store.resolve(model, 2).number == 2
        assert store.resolve(model, "2").number == 2
        assert store.resolve(model, "v1").number == 1
        store.set_alias(model, "champion", 2)
        champion = store.resolve(model, "champion")
        assert (champion.number, champion.aliases) == (2, ("champion",))
        assert [v.aliases for v in store.list_versions(model)] == [(), ("champion",), ()]
        with pytest.raises(NotFoundError, match="has no version 4"):
            store.resolve(model, 4)
        with pytest.raises(NotFoundError, match="has no alias 'gold'"):
            store.resolve(model, "gold")
        for bad in (0, -1, "v0", "a b", True, 1.5):
            with pytest.raises(UsageError):
                store.resolve(model, bad)  # type: ignore[arg-type]

    def test_aliases_move_by_compare_and_swap(self, ledger: Ledger) -> None:
        store = ledger.models
        model = self.versions(ledger, 3)
        first = store.set_alias(model, "champion", 1, expected=None, reason="first model")
        assert (first.alias, first.from_number, first.to_number) == ("champion", None, 1)
        assert (first.reason, first.created_by, first.model) == (
            "first model",
            ledger.user,
            "delays",
        )
        moved = store.set_alias(model, "champion", 2, expected=1)
        assert (moved.from_number, moved.to_number) == (1, 2)
        with pytest.raises(ConflictError, match="points at version 2; expected it at version 1"):
            store.set_alias(model, "champion", 3, expected=1)
        with pytest.raises(ConflictError, match="expected it to be unset"):
            store.set_alias(model, "champion", 3, expected=None)
        with pytest.raises(ConflictError, match="'challenger' of model 'delays' is not set"):
            store.set_alias(model, "challenger", 3, expected=2)
        assert store.aliases(model) == {"champion": 2}, "a conflict writes nothing"
        assert len(store.alias_history(model)) == 2
        # Unchecked moves go wherever the alias points; "latest" and aliases name versions.
        assert store.set_alias(model, "challenger", "latest").to_number == 3
        assert store.set_alias(model, "backup", "champion").to_number == 2
        again = store.set_alias(model, "backup", 2, expected=2)
        assert again.id == store.alias_history(model, "backup")[0].id, "a no-op writes nothing"
        assert store.aliases(model) == {"backup": 2, "challenger": 3, "champion": 2}
        with pytest.raises(NotFoundError, match="has no version 9"):
            store.set_alias(model, "champion", 9)

    def test_racing_compare_and_swaps_let_exactly_one_win(self, ledger: Ledger) -> None:
        from plinth.testing.races import race

        store = ledger.models
        model = self.versions(ledger, 8)
        store.set_alias(model, "champion", 1)
        targets = iter(range(2, 9))

        def swap() -> int | None:
            target = next(targets)
            try:
                return store.set_alias(model, "champion", target, expected=1).to_number
            except ConflictError:
                return None

        won = [n for n in race(7, swap) if n is not None]
        assert len(won) == 1
        assert store.aliases(model) == {"champion": won[0]}
        assert len(store.alias_history(model, "champion")) == 2

    def test_several_aliases_move_in_one_transaction_or_not_at_all(self, ledger: Ledger) -> None:
        store = ledger.models
        model = self.versions(ledger, 3)
        store.set_aliases(model, [("champion", 1), ("challenger", 2)], reason="setup")
        with pytest.raises(ConflictError, match=r"'challenger'.*points at version 2"):
            store.set_aliases(model, [("champion", 2, 1), ("challenger", 3, 1)], reason="promote")
        assert store.aliases(model) == {"challenger": 2, "champion": 1}
        assert len(store.alias_history(model)) == 2
        moves = store.set_aliases(
            model, [("champion", 2, 1), ("challenger", 3, 2)], reason="promote"
        )
        assert [(m.alias, m.from_number, m.to_number, m.reason) for m in moves] == [
            ("champion", 1, 2, "promote"),
            ("challenger", 2, 3, "promote"),
        ]
        assert store.aliases(model) == {"challenger": 3, "champion": 2}
        with pytest.raises(NotFoundError):
            store.set_aliases(model, [("champion", 3), ("challenger", 7)])
        assert store.aliases(model) == {"challenger": 3, "champion": 2}
        with pytest.raises(UsageError, match="moved twice"):
            store.set_aliases(model, [("champion", 1), ("champion", 2)])
        with pytest.raises(UsageError, match="non-empty list"):
            store.set_aliases(model, [])

    def test_every_move_is_audited_newest_first(self, ledger: Ledger) -> None:
        store = ledger.models
        model = self.versions(ledger, 3)
        before = now_ms()
        store.set_alias(model, "champion", 1, reason="baseline")
        store.set_alias(model, "challenger", 3)
        store.set_alias(model, "champion", 2, reason="better rmse")
        deleted = store.delete_alias(model, "challenger", expected=3, reason="lost the a/b test")
        assert (deleted.from_number, deleted.to_number) == (3, None)
        history = store.alias_history(model)
        assert [(m.alias, m.from_number, m.to_number, m.reason) for m in history] == [
            ("challenger", 3, None, "lost the a/b test"),
            ("champion", 1, 2, "better rmse"),
            ("challenger", None, 3, None),
            ("champion", None, 1, "baseline"),
        ]
        assert all(m.created_by == ledger.user for m in history)
        assert all(before <= m.created_at <= now_ms() for m in history)
        assert [m.to_number for m in store.alias_history(model, "champion")] == [2, 1]
        assert store.aliases(model) == {"champion": 2}
        with pytest.raises(NotFoundError, match="has no alias 'challenger'"):
            store.delete_alias(model, "challenger")
        with pytest.raises(ConflictError, match="points at version 2"):
            store.delete_alias(model, "champion", expected=1)
        assert store.aliases(model) == {"champion": 2}

    def test_rollback_returns_an_alias_to_its_previous_version(self, ledger: Ledger) -> None:
        store = ledger.models
        model = self.versions(ledger, 3)
        store.set_alias(model, "champion", 1)
        with pytest.raises(ConflictError, match="no earlier version to roll back to"):
            store.rollback(model, "champion")
        store.set_alias(model, "champion", 3)
        back = store.rollback(model, "champion", reason="p99 latency regression")
        assert (back.from_number, back.to_number, back.reason) == (
            3,
            1,
            "p99 latency regression",
        )
        assert store.aliases(model) == {"champion": 1}
        assert store.rollback(model, "champion").to_number == 3, "a rollback is a move"
        store.delete_alias(model, "champion")
        assert store.rollback(model, "champion").to_number == 3, "undoes the delete"
        with pytest.raises(NotFoundError, match="has no alias 'gold'"):
            store.rollback(model, "gold")
        assert len(store.alias_history(model, "champion")) == 6

    def test_bad_input_is_refused_with_what_to_fix(self, ledger: Ledger) -> None:
        store = ledger.models
        model = self.versions(ledger, 1)
        for key, bad, match in (
            ("flavor", "Sk Learn", "invalid model flavor"),
            ("flavor", "x" * 33, "invalid model flavor"),
            ("manifest_digest", "xyz", "manifest digest"),
            ("trusted_digests", ["nope"], "trusted digest"),
            ("trusted_digests", _digest(1), "not one string"),
            ("metrics", {"rmse": "low"}, "must be a number"),
            ("signature", {"x": object()}, "JSON-serialisable"),
            ("run_id", "a b", "invalid run id"),
        ):
            kwargs: dict[str, Any] = {"flavor": "sklearn", "manifest_digest": _digest(2), key: bad}
            with pytest.raises(UsageError, match=match):
                store.register(model, **kwargs)
        assert [v.number for v in store.list_versions(model)] == [1]
        for alias in ("latest", "v2", "1x", "", "a b", "x" * 256):
            with pytest.raises(UsageError, match="invalid alias"):
                store.set_alias(model, alias, 1)
        with pytest.raises(UsageError, match="expected version"):
            store.set_alias(model, "champion", 1, expected="one")  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="reason"):
            store.set_alias(model, "champion", 1, reason=7)  # type: ignore[arg-type]
        assert store.aliases(model) == {}
        assert store.alias_history(model) == []

    def test_gc_keeps_model_manifests(self, ledger: Ledger) -> None:
        assert ("model_versions", "manifest_digest") in BLOB_REFERENCES
        model = self.model(ledger)
        self.register(ledger, model, 41)
        self.register(ledger, model, 42)
        assert {_digest(41), _digest(42)} <= ledger.gc.referenced_digests()
