"""Writers racing on the same keys: one wins, the others are told, nothing is lost silently."""

from __future__ import annotations

from plinth.entities import RecordRef
from plinth.errors import ConflictError
from plinth.ledger import Ledger
from plinth.testing.ledger_contract import digest_of, race


def test_racing_writers_of_one_param_get_one_winner(ledger: Ledger) -> None:
    project = ledger.projects.ensure_project("p")
    run = ledger.runs.create_run(ledger.projects.ensure_experiment(project.id, "e").id)
    counter = iter(range(8))

    def log() -> str | None:
        value = f"v{next(counter)}"
        try:
            ledger.runs.log_params(run.id, {"lr": value, f"own-{value}": value})
        except ConflictError:
            return None
        return value

    winners = [value for value in race(8, log) if value is not None]
    assert len(winners) == 1
    stored = ledger.runs.get_params(run.id)
    assert stored == {"lr": winners[0], f"own-{winners[0]}": winners[0]}


def test_racing_writers_of_one_artifact_path_get_one_winner(ledger: Ledger) -> None:
    owner = RecordRef("run", "r1")
    counter = iter(range(8))

    def record() -> str | None:
        digest = digest_of(str(next(counter)))
        try:
            ledger.artifacts.record(owner, "model.bin", digest, 1)
        except ConflictError:
            return None
        return digest

    winners = [digest for digest in race(8, record) if digest is not None]
    assert len(winners) == 1
    assert ledger.artifacts.get(owner, "model.bin").digest == winners[0]
