"""The shipped ledger contract, run against a RemoteLedger over a live team server.

Every store method's behaviour (errors, idempotence, races, NaN, 100k points) must be the
same over HTTP as in process; each test gets a project of its own on one server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from plinth.errors import UsageError
from plinth.ledger import Ledger
from plinth.ledger.remote import RemoteLedger
from plinth.testing.ledger_contract import LedgerContract
from plinth.testing.server import ServerHandle, start_server

pytest.importorskip("starlette")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(tmp_path_factory.mktemp("server"), token_limit=100_000)
    yield handle
    handle.stop()


@pytest.fixture
def ledger(server: ServerHandle) -> Iterator[Ledger]:
    project = f"c{uuid.uuid4().hex[:16]}"
    server.create_project(project)
    token = server.token("tester", project, "admin")
    with RemoteLedger(server.url, project=project, token=token) as remote:
        yield remote  # type: ignore[misc]  # the same attributes as a Ledger


class TestRemoteLedgerContract(LedgerContract):
    def test_bad_input_is_refused_with_what_to_fix(self, ledger: Ledger) -> None:
        """Wrong values get the store's own words, as in process; a wrongly *typed*
        argument is refused by the client before anything is sent, naming the argument."""
        store = ledger.models
        model = self.versions(ledger, 1)
        for key, bad, match in (
            ("flavor", "Sk Learn", "invalid model flavor"),
            ("manifest_digest", "xyz", "manifest digest"),
            ("trusted_digests", ["nope"], "trusted digest"),
            ("trusted_digests", "1" * 64, "not one string"),
            ("metrics", {"rmse": "low"}, "must be a number"),
            ("signature", {"x": object()}, "JSON-serialisable"),
            ("run_id", "a b", "invalid run id"),
        ):
            kwargs: dict[str, Any] = {"flavor": "sklearn", "manifest_digest": "2" * 64, key: bad}
            with pytest.raises(UsageError, match=match):
                store.register(model, **kwargs)
        assert [v.number for v in store.list_versions(model)] == [1]
        with pytest.raises(UsageError, match="invalid alias"):
            store.set_alias(model, "a b", 1)
        with pytest.raises(UsageError, match=r"^expected: str is not"):
            store.set_alias(model, "champion", 1, expected="one")  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="reason"):
            store.set_alias(model, "champion", 1, reason=7)  # type: ignore[arg-type]
        assert store.aliases(model) == {}
