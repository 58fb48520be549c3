"""Recording many artifacts at once: new paths, paths already there, conflicts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth
from plinth.entities import RecordRef
from plinth.errors import ConflictError
from plinth.ledger.artifacts import ArtifactStore

_A, _B, _C = "a" * 64, "b" * 64, "c" * 64
_Scene = tuple[RecordRef, ArtifactStore]


@pytest.fixture
def owner_and_store(project_dir: Path) -> Iterator[tuple[RecordRef, ArtifactStore]]:
    ctx = plinth.init(project_dir, system_metrics=False)
    with plinth.start_run() as run:
        yield RecordRef("run", run.id), ctx.ledger.artifacts
    ctx.close()


def test_a_batch_of_new_paths_is_returned_as_stored(owner_and_store: _Scene) -> None:
    owner, store = owner_and_store
    given = [(f"d/{i}.bin", _A, i, None) for i in range(5)]
    returned = store.record_many(owner, given)
    assert [(a.path, a.digest, a.size) for a in returned] == [(p, d, s) for p, d, s, _ in given]
    assert returned == store.list(owner)  # what came back is what a later read sees


def test_a_batch_mixing_new_and_recorded_paths_keeps_the_recorded_ones(
    owner_and_store: _Scene,
) -> None:
    owner, store = owner_and_store
    (first,) = store.record_many(owner, [("x.bin", _A, 1, None)])
    returned = store.record_many(owner, [("x.bin", _A, 1, None), ("y.bin", _B, 2, None)])
    assert returned[0] == first  # the recorded row, with its original time
    assert [a.path for a in store.list(owner)] == ["x.bin", "y.bin"]


def test_a_conflict_in_a_batch_records_none_of_it(owner_and_store: _Scene) -> None:
    owner, store = owner_and_store
    store.record_many(owner, [("x.bin", _A, 1, None)])
    with pytest.raises(ConflictError, match="already points at blob"):
        store.record_many(owner, [("new.bin", _C, 3, None), ("x.bin", _B, 2, None)])
    assert [(a.path, a.digest) for a in store.list(owner)] == [("x.bin", _A)]
