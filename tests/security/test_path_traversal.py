"""Logical artifact paths: what is accepted, how it is normalised, and every refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plinth.errors import InvalidPathError
from plinth.guards.paths import MAX_PATH_LENGTH, normalize_artifact_path, safe_join


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("model.onnx", "model.onnx"),
        ("plots/loss.png", "plots/loss.png"),
        ("./a//b/", "a/b"),
        ("a/./b/./c", "a/b/c"),
        ("a/b/", "a/b"),
        ("./x", "x"),
        (".hidden/file", ".hidden/file"),
        ("a/.../b", "a/.../b"),
        ("..foo/bar..", "..foo/bar.."),
        ("données/été.csv", "données/été.csv"),
        ("100%.txt", "100%.txt"),
        ("report%20final.html", "report%20final.html"),
        ("run:1/metrics.json", "run:1/metrics.json"),
        ("x" * MAX_PATH_LENGTH, "x" * MAX_PATH_LENGTH),
    ],
)
def test_accepted_paths_are_normalised(raw: str, expected: str) -> None:
    assert normalize_artifact_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param(".", "empty", id="dot"),
        pytest.param("./", "empty", id="dot-slash"),
        pytest.param("././/.", "empty", id="dots-and-slashes"),
        pytest.param("...", "empty", id="only-dots"),
        pytest.param("/", "absolute", id="root"),
        pytest.param("/etc/passwd", "absolute", id="absolute"),
        pytest.param("//server/share", "UNC", id="unc-forward-slashes"),
        pytest.param("C:foo", "drive", id="drive-relative"),
        pytest.param("C:\\x", "drive", id="drive-absolute"),
        pytest.param("c:/windows", "drive", id="drive-forward-slash"),
        pytest.param("\\\\server\\share", "UNC", id="unc"),
        pytest.param("a\\b", "backslash", id="backslash"),
        pytest.param("..\\x", "backslash", id="backslash-traversal"),
        pytest.param("..", "'..'", id="dotdot"),
        pytest.param("../x", "'..'", id="dotdot-prefix"),
        pytest.param("a/../../x", "'..'", id="dotdot-middle"),
        pytest.param("a/..", "'..'", id="dotdot-end"),
        pytest.param("%2e%2e/x", "percent-decoded", id="encoded-dots"),
        pytest.param("%2E%2E/x", "percent-decoded", id="encoded-dots-upper"),
        pytest.param("..%2fx", "percent-decoded", id="encoded-slash"),
        pytest.param("%2e%2e%2f", "percent-decoded", id="fully-encoded"),
        pytest.param("a/%2e%2e%2f%2e%2e%2fetc", "percent-decoded", id="encoded-middle"),
        pytest.param("%252e%252e%252f", "percent-decoded", id="double-encoded"),
        pytest.param("%25252e%25252e/x", "percent-decoded", id="triple-encoded"),
        pytest.param("%2fetc/passwd", "percent-decoded", id="encoded-absolute"),
        pytest.param("a%5cb", "percent-decoded", id="encoded-backslash"),
        pytest.param("a%00b", "percent-decoded", id="encoded-nul"),
        pytest.param("%2525252525252e", "more than 5 times", id="too-deeply-encoded"),
        pytest.param("a\x00b", "NUL or control", id="nul"),
        pytest.param("a\nb", "NUL or control", id="newline"),
        pytest.param("a\tb", "NUL or control", id="tab"),
        pytest.param("a\x1bb", "NUL or control", id="escape"),
        pytest.param("a\x7fb", "NUL or control", id="delete"),
        pytest.param("x" * (MAX_PATH_LENGTH + 1), "longer than 1024", id="too-long"),
    ],
)
def test_unsafe_paths_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPathError) as info:
        normalize_artifact_path(raw)
    message = str(info.value)
    assert reason in message
    assert repr(raw if len(raw) <= 80 else raw[:77] + "...") in message
    assert info.value.hint  # tells the user what a good path looks like


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidPathError, match="not a string"):
        normalize_artifact_path(b"a/b")  # type: ignore[arg-type]


def test_safe_join_stays_inside_root(tmp_path: Path) -> None:
    assert safe_join(tmp_path, "./a//b.txt") == tmp_path / "a" / "b.txt"
    with pytest.raises(InvalidPathError):
        safe_join(tmp_path, "../escape")


def test_safe_join_refuses_a_symlink_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidPathError, match="resolves outside"):
        safe_join(root, "link/secret.txt")
    (root / "inner").mkdir()
    os.symlink(root / "inner", root / "ok-link")
    assert safe_join(root, "ok-link/file.txt") == root / "ok-link" / "file.txt"
