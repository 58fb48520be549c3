"""Fixtures for the blob store tests: a moto S3 server and one store per backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from plinth.storage import BlobStore, open_blob_store
from plinth.storage.memory import MemoryBlobStore
from plinth.testing.s3server import TEST_CREDENTIALS, create_bucket, moto_s3_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The endpoint URL of a moto S3 server, started once per test session."""
    with moto_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake AWS credentials in the environment, real ones hidden; restored after the test."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    for name, value in TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return dict(TEST_CREDENTIALS)


@pytest.fixture
def s3_bucket(moto_endpoint: str, aws_env: dict[str, str]) -> str:
    """A fresh, empty bucket on the moto server."""
    return create_bucket(moto_endpoint)


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
