"""``plinth data add --link hardlink`` never changes a file outside the dataset it adds.

A hard-linked file is made read-only, and a hard link shares its mode with every other name
of the file. A symbolic link in a dataset folder (written by whoever shared the folder)
must not have the store link and change its target, wherever it is; a file of another user
must not be linked either (root could: the store would change that user's file). Both are
refused with a message naming the file; ``auto`` copies them instead.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded_only("hard links go into a local artifact folder")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_symlink_to_a_file_outside_is_refused_and_its_target_untouched(
    project_dir: Path, cli: Callable, tmp_path: Path
) -> None:
    assert cli("init").code == 0
    outside = tmp_path / "outside.cfg"
    outside.write_text("somebody else's settings\n")
    outside.chmod(0o644)
    data = project_dir / "shared"
    data.mkdir()
    (data / "own.csv").write_text("a\n1\n")
    (data / "innocent.csv").symlink_to(outside)
    r = cli("data", "add", "shared", "--name", "shared", "--link", "hardlink")
    assert r.code == 2, r.out + r.err
    assert "innocent.csv" in r.err
    assert "symbolic link" in r.err
    assert _mode(outside) == 0o644, "the target's mode was changed"
    assert os.lstat(outside).st_nlink == 1, "the target was linked into the store"
    # auto copies what it cannot link (the content, as a copy does), and changes nothing
    r = cli("data", "add", "shared", "--name", "shared", "--link", "auto", "--json")
    assert r.code == 0, r.err
    added = json.loads(r.out)
    assert added["linked"] == {"hardlink": 1}  # own.csv; the symlink's target was copied
    assert "innocent.csv" in added["link_note"]
    assert "copied instead" in added["link_note"]
    assert _mode(outside) == 0o644
    assert os.lstat(outside).st_nlink == 1


def test_another_users_file_is_not_linked_or_made_read_only(
    project_dir: Path, cli: Callable
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root (CI runs as root)")
    assert cli("init").code == 0
    data = project_dir / "shared"
    data.mkdir()
    theirs = data / "theirs.csv"
    theirs.write_text("b\n2\n")
    theirs.chmod(0o664)
    os.chown(theirs, 65534, 65534)  # nobody
    r = cli("data", "add", "shared", "--name", "shared", "--link", "hardlink")
    assert r.code == 2, r.out + r.err
    assert "theirs.csv" in r.err
    assert "another user" in r.err
    assert _mode(theirs) == 0o664
    assert os.lstat(theirs).st_nlink == 1
