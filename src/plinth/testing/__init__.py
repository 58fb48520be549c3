"""Contract test suites every backend implementation must pass, shipped for plugin authors.

Owns :mod:`plinth.testing.blob_contract` (every ``BlobStore``),
:mod:`plinth.testing.ledger_contract` (every ledger backend) and
:mod:`plinth.testing.s3server` (a real S3-compatible server, moto, for tests). These modules
import ``pytest``, so nothing else in plinth may import them.

May import: any public plinth module, ``pytest``, ``blake3``; ``boto3`` and ``moto`` inside
functions only.
"""

import contextlib

with contextlib.suppress(ImportError):  # without pytest: plain assert messages
    import pytest

    # Detailed assert messages in the suites, as in a test module.
    pytest.register_assert_rewrite("plinth.testing.blob_contract", "plinth.testing.ledger_contract")
