"""The blob store contract, run against every built-in backend (local, memory, S3)."""

from plinth.testing.blob_contract import BlobStoreContract


class TestBlobStoreContract(BlobStoreContract):
    pass
