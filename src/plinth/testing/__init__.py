"""Contract test suites every backend implementation must pass, shipped for plugin authors.

Owns the contracts (``blob_contract`` for every ``BlobStore``; ``ledger_contract``,
``dataset_contract``, ``model_contract``, ``monitor_contract``, ``spec_contract`` for every
ledger backend), ``races`` (racing threads, test digests), ``s3server`` (a real
S3-compatible server, moto), ``server`` (a live team server, in a thread or a subprocess)
and ``tcpproxy`` (a loopback proxy for outage tests). These
modules import ``pytest``, so nothing else in plinth may import them (the top layer of
docs/architecture.md).

May import: any public plinth module, ``pytest``, ``blake3``; ``boto3`` and ``moto`` inside
functions only.
"""

import contextlib

with contextlib.suppress(ImportError):  # without pytest: plain assert messages
    import pytest

    # Detailed assert messages in the suites, as in a test module.
    pytest.register_assert_rewrite("plinth.testing.blob_contract", "plinth.testing.ledger_contract")
