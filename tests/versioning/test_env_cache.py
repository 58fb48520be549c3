"""The environment capture is reused within a process until an installation changes it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plinth.versioning.env import capture_environment


def _install(site: Path, name: str, version: str, metadata: str | None = None) -> None:
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir()
    text = metadata or f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nlong text\n"
    (folder / "METADATA").write_text(text, encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An extra site-packages folder on sys.path, old enough for its time stamp to be trusted."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(folder)])
    time.sleep(0.15)
    yield folder
    capture_environment.cache_clear()


def test_reused_while_nothing_is_installed(site: Path) -> None:
    first = capture_environment()
    assert capture_environment() is first


def test_an_installation_in_this_process_is_seen(site: Path) -> None:
    before = capture_environment()
    assert "plinth-probe" not in before.packages
    _install(site, "plinth-probe", "1.2.3")
    after = capture_environment()
    assert after.packages["plinth-probe"] == "1.2.3"
    assert after.digest != before.digest


def test_a_changed_sys_path_is_seen(site: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _install(other, "plinth-other", "0.1")
    assert "plinth-other" not in capture_environment().packages
    sys.path.append(str(other))
    assert capture_environment().packages["plinth-other"] == "0.1"


@pytest.mark.parametrize(
    "text",
    [
        "Metadata-Version: 2.1\nName: plain\nVersion: 1.0\n\nName: not-a-header\n",
        "Metadata-Version: 2.1\r\nName: crlf\r\nVersion: 1.0\r\n\r\nbody\r\n",
        "metadata-version: 2.1\nname: lower\nversion: 3.0rc1\n",
        "Metadata-Version: 2.1\nName: first\nName: second\nVersion: 1\nVersion: 2\n",
        "Metadata-Version: 2.1\nName:\n folded\nVersion: 2.0\n\n",
        "Metadata-Version: 2.1\nName: noversion\n\n",
        "Metadata-Version: 2.1\nName: =?utf-8?q?enc?=\nVersion: 1\n",
    ],
)
def test_the_fast_metadata_reader_agrees_with_the_email_parser(tmp_path: Path, text: str) -> None:
    from importlib import metadata

    from plinth.versioning.env import _name_version

    _install(tmp_path, "probe", "0", text)
    (dist,) = metadata.distributions(path=[str(tmp_path)])
    assert _name_version(dist) == (dist.metadata["Name"], dist.version)
