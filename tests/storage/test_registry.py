"""Choosing a blob store from the ``artifacts`` setting: schemes, plugins, clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import plinth.storage
from plinth.errors import BlobStoreError, ConfigError, MissingExtraError
from plinth.storage import LocalBlobStore, MemoryBlobStore, open_blob_store

SRC = Path(plinth.storage.__file__).resolve().parents[2]


def _python(code: str, *, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout of plinth."""
    paths = [str(p) for p in (extra_path, SRC) if p is not None]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_relative_folder_is_taken_from_the_project_root(tmp_path: Path) -> None:
    store = open_blob_store(".plinth/artifacts", root=tmp_path)
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / ".plinth" / "artifacts"
    assert not store.root.exists()  # created on first write, not on open
    with store.stage() as staged:
        staged.write(b"x")
        staged.commit("a/b")
    assert (tmp_path / ".plinth" / "artifacts" / "a" / "b").read_bytes() == b"x"


@pytest.mark.parametrize("form", ["{path}", "file://{path}", "file://localhost{path}"])
def test_absolute_folder_and_file_uris(tmp_path: Path, form: str) -> None:
    target = tmp_path / "shared" / "artifacts"
    store = open_blob_store(form.format(path=target), root=tmp_path / "elsewhere")
    assert isinstance(store, LocalBlobStore)
    assert store.root == target
    assert store.describe() == str(target)


def test_file_uri_with_a_remote_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="remote host") as info:
        open_blob_store("file://fileserver/artifacts", root=tmp_path)
    assert info.value.field == "artifacts"


def test_memory_stores_with_the_same_name_share_blobs(tmp_path: Path) -> None:
    first = open_blob_store("memory://registry-test", root=tmp_path)
    second = open_blob_store("memory://registry-test", root=tmp_path)
    other = open_blob_store("memory://registry-test-other", root=tmp_path)
    assert isinstance(first, MemoryBlobStore)
    try:
        with first.stage() as staged:
            staged.write(b"shared")
            staged.commit("k")
        assert second.exists("k")
        assert not other.exists("k")
        assert first.describe() == "memory://registry-test"
    finally:
        first.clear()


def test_unknown_scheme_names_the_setting_and_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_blob_store("gcs://user:hunter2@bucket/prefix", root=tmp_path)
    error = info.value
    assert error.field == "artifacts"
    assert "'artifacts'" in str(error)
    assert "gcs://" in str(error)
    assert "hunter2" not in str(error) + error.hint
    for scheme in ("file://", "memory://", "s3://"):
        assert scheme in error.hint


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://", "no bucket"),
        ("s3:///prefix", "no bucket"),
        ("s3://bucket/prefix?secret_key=hunter2", "query"),
        ("s3://AKIA:hunter2@bucket/prefix", "user part"),
        ("s3://bucket/../other", "invalid prefix"),
    ],
)
def test_malformed_s3_uris_are_config_errors(tmp_path: Path, uri: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        open_blob_store(uri, root=tmp_path)
    assert info.value.field == "artifacts"
    assert "hunter2" not in str(info.value)


def test_malformed_endpoint_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_blob_store("s3://bucket", root=tmp_path, endpoint_url="not a url")
    assert info.value.field == "s3_endpoint_url"


def _plugin(tmp_path: Path, target: str) -> Path:
    """An installed distribution (a dist-info folder on sys.path) with one entry point."""
    site = tmp_path / "site"
    dist_info = site / "plinth_test_plugin-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: plinth-test-plugin\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[plinth.blob_stores]\nfakefs = {target}\n")
    (site / "plinth_test_plugin.py").write_text(
        textwrap.dedent(
            """
            from plinth.storage import MemoryBlobStore

            class FakeFsStore(MemoryBlobStore):
                def __init__(self, uri, *, root, endpoint_url, connect_timeout):
                    super().__init__("fakefs:" + uri)
                    self.uri, self.project_root = uri, root

            def not_a_store(uri, **kwargs):
                return "nope"
            """
        )
    )
    return site


def test_plugins_come_from_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(_plugin(tmp_path, "plinth_test_plugin:FakeFsStore")))
    store = open_blob_store("fakefs://somewhere/x", root=tmp_path)
    assert type(store).__name__ == "FakeFsStore"
    assert store.uri == "fakefs://somewhere/x"  # type: ignore[attr-defined]
    assert store.project_root == tmp_path  # type: ignore[attr-defined]
    with pytest.raises(ConfigError) as info:
        open_blob_store("nope://x", root=tmp_path)
    assert "fakefs://" in info.value.hint


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("plinth_test_plugin:not_a_store", "not a BlobStore"),
        ("plinth_test_plugin:Missing", "cannot load the blob store plugin"),
        ("no_such_module_anywhere:Store", "cannot load the blob store plugin"),
    ],
)
def test_broken_plugins_are_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    monkeypatch.syspath_prepend(str(_plugin(tmp_path, target)))
    with pytest.raises(ConfigError, match=message) as info:
        open_blob_store("fakefs://x", root=tmp_path)
    assert "fakefs" in str(info.value)


def test_s3_without_boto3_names_the_missing_extra(tmp_path: Path) -> None:
    fake = tmp_path / "no_boto3"
    (fake / "boto3").mkdir(parents=True)
    (fake / "boto3" / "__init__.py").write_text("raise ImportError('No module named boto3')\n")
    result = _python(
        """
        import json
        from pathlib import Path
        from plinth.errors import PlinthError
        from plinth.storage import open_blob_store
        try:
            open_blob_store("s3://bucket/team", root=Path("."))
        except PlinthError as exc:
            print(json.dumps({"type": type(exc).__name__, "extra": exc.extra, **exc.to_dict()}))
        """,
        extra_path=fake,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["type"] == MissingExtraError.__name__
    assert payload["extra"] == "s3"
    [error] = payload["errors"]
    assert error["field"] == "artifacts"
    assert "artifacts=s3://bucket/team" in error["message"]
    assert "pip install 'plinth[s3]'" in error["hint"]


def test_importing_storage_does_not_import_boto3() -> None:
    result = _python(
        """
        import sys
        from pathlib import Path
        import plinth.storage
        plinth.storage.open_blob_store("artifacts", root=Path("/nonexistent"))
        print(sorted(m for m in ("boto3", "botocore", "plinth.storage.s3") if m in sys.modules))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_unreachable_s3_endpoint_fails_check_without_leaking_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = "SECRET-MARKER-4f1c9a"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "plinth-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", marker)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = open_blob_store(
        "s3://plinth-unreachable/team",
        root=tmp_path,
        endpoint_url="http://127.0.0.1:1",
        connect_timeout=1.0,
    )
    with store, pytest.raises(BlobStoreError) as info:
        store.check()
    error = info.value
    text = str(error) + error.hint + error.one_line() + json.dumps(error.to_dict())
    assert marker not in text
    assert "plinth-unreachable" in str(error)
    assert "http://127.0.0.1:1" in str(error)
    assert "PLINTH_S3_ENDPOINT_URL" in error.hint
    assert marker not in store.describe()


def test_missing_credentials_fail_check_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    store = open_blob_store("s3://bucket", root=tmp_path, endpoint_url="http://127.0.0.1:1")
    with store, pytest.raises(BlobStoreError, match="no AWS credentials") as info:
        store.check()
    assert "AWS_ACCESS_KEY_ID" in info.value.hint
