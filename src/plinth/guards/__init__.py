"""Trust boundaries: the only ways plinth lets text from a record or a config file touch the
machine it runs on.

A team shares one ledger, so every record (a run's entry point, a recorded environment, a
model's file list, a suite, a monitor file) may have been written by someone else. Each
module here guards one boundary, and the rest of plinth crosses that boundary only through it
(``tests/security/test_guard_boundaries.py`` checks this):

- :mod:`plinth.guards.paths`: the safe-join for paths taken from records and configs.
- :mod:`plinth.guards.net`: the outbound-connection guard (webhooks, e-mail, server checks).
- :mod:`plinth.guards.sql`: the sandboxed DuckDB connection for SQL written by users.
- :mod:`plinth.guards.environments`: validation and quoting of recorded environments.
- :mod:`plinth.guards.secrets`: redaction of secrets before anything is stored.
- :mod:`plinth.guards.terminal`: record text shown safely on a terminal (no escapes).

This package is core: it imports only ``plinth.errors``, ``plinth.settings`` and the standard
library (plus DuckDB inside :mod:`plinth.guards.sql`, imported lazily).
"""
