"""The shipped ledger contract, run against SQLite and PostgreSQL."""

from plinth.testing.ledger_contract import LedgerContract


class TestLedgerContract(LedgerContract):
    pass
