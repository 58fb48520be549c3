"""Fixtures for the blob store tests: a moto S3 server and one store per backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from plinth.storage import BlobStore, open_blob_store
from plinth.storage.memory import MemoryBlobStore


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """An empty store of each backend, as opened from the ``artifacts`` setting."""
    kind: str = request.param
    if kind == "local":
        uri, endpoint = "artifacts", None
    elif kind == "memory":
        uri, endpoint = f"memory://test-{uuid.uuid4().hex}", None
    else:
        bucket = request.getfixturevalue("s3_bucket")
        uri, endpoint = f"s3://{bucket}/team/project", request.getfixturevalue("moto_endpoint")
    store = open_blob_store(uri, root=tmp_path / "project", endpoint_url=endpoint)
    yield store
    if isinstance(store, MemoryBlobStore):
        store.clear()
    store.close()
