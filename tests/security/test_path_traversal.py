"""Path traversal: logical paths (every spelling), safe_join (symlinks), and the records that
materialise files (model manifests on load and serve, dataset checkout)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.entities import ModelVersion
from plinth.errors import ConflictError, IntegrityError, InvalidPathError
from plinth.guards.paths import MAX_PATH_LENGTH, normalize_artifact_path, safe_join
from plinth.ledger import tables


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


# -- Records that materialise files: model manifests, dataset manifests -------------------
#
# The attacker can write to the ledger and the blob store (a teammate's shared setup): they
# store a manifest blob of their own and point a version's row at it with SQLAlchemy.

#: Entries that try to leave the destination, each spelled another way. ``{out}`` is the
#: absolute path of a folder outside the destination, without its leading '/'.
ATTACK_ENTRIES = [
    pytest.param("../" * 40 + "{out}/x", id="dotdot"),
    pytest.param("/{out}/x", id="absolute"),
    pytest.param("%2e%2e/" * 40 + "{out}/x", id="percent-encoded-dots"),
    pytest.param("..%2f" * 40 + "{out}/x", id="percent-encoded-slash"),
    pytest.param("%252e%252e%252f" * 40 + "{out}/x", id="double-encoded"),
    pytest.param("..\\" * 40 + "{out}\\x", id="backslash"),
    pytest.param("a/" + "../" * 41 + "{out}/x", id="dotdot-in-the-middle"),
]


def _spell(entry: str, outside: Path) -> str:
    """``entry`` aimed at ``outside`` (with backslashes where the entry uses them)."""
    target = str(outside).lstrip("/")
    return entry.format(out=target.replace("/", "\\") if "\\" in entry else target)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _written_since(ctx: Context, root: Path, before: set[Path]) -> set[Path]:
    """Files new under ``root`` since ``before``, bar content-addressed blobs (a deployment
    record stores its spec as one)."""
    blobs = Path(ctx.blobs.location("0" * 64)).parents[1]
    return {p for p in _files_under(root) - before if not p.is_relative_to(blobs)}


def _poison_model(ctx: Context, version: ModelVersion, entry: str) -> None:
    """Rewrite ``version``'s stored manifest with ``entry`` added, as an attacker would."""
    doc = json.loads(ctx.blobs.read_bytes(version.manifest_digest))
    payload = ctx.blobs.put_bytes(PAYLOAD)
    doc["files"].append([entry, payload.digest, payload.size])
    ref = ctx.blobs.put_bytes(json.dumps(doc).encode())
    rows = tables.model_versions
    with ctx.ledger.engine.begin() as conn:
        conn.execute(
            sa.update(rows).where(rows.c.id == version.id).values(manifest_digest=ref.digest)
        )


PAYLOAD = b"planted by whoever wrote the manifest\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """An empty folder outside every destination, where an escape would land."""
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


@pytest.fixture
def logged_model(project: Context) -> ModelVersion:
    """Model ``m`` version 1, a genuine scikit-learn model, aliased ``champion``."""
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"distance": [0.0, 1.0, 2.0, 3.0], "hour": [1, 2, 3, 4]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    with plinth.start_run() as run:
        version = run.log_model(model, "m", input_example=frame)
    plinth.models.set_alias("m", "champion", 1)
    return version


@pytest.mark.parametrize("entry", ATTACK_ENTRIES)
def test_model_manifest_entry_escaping_the_folder_is_refused_and_nothing_written(
    project: Context, logged_model: ModelVersion, outside: Path, tmp_path: Path, entry: str
) -> None:
    entry = _spell(entry, outside)
    _poison_model(project, logged_model, entry)
    before = _files_under(tmp_path)
    with pytest.raises(InvalidPathError) as info:
        plinth.models.load("m@1", trusted=True)
    assert "the manifest of m@1 lists a file that would be written outside" in str(info.value)
    assert info.value.field == "files"
    assert _files_under(outside) == set()
    assert _written_since(project, tmp_path, before) == set()
    assert list((project.settings.data_dir / "tmp").iterdir()) == []


@pytest.mark.parametrize("entry", ATTACK_ENTRIES)
def test_plinth_serve_refuses_a_model_whose_manifest_escapes_and_writes_nothing(
    project: Context, logged_model: ModelVersion, outside: Path, tmp_path: Path, entry: str
) -> None:
    from plinth.serving.app import Server
    from plinth.serving.spec import DeploymentSpec

    entry = _spell(entry, outside)
    _poison_model(project, logged_model, entry)
    before = _files_under(tmp_path)
    spec = DeploymentSpec.from_yaml("name: web\nmodel: m@champion\n")
    server = Server(spec, ctx=project, log_predictions=False)
    with pytest.raises(InvalidPathError, match="outside the model folder"):
        server.start()
    assert not server.ready
    assert server.primary.current is None
    assert _files_under(outside) == set()
    assert _written_since(project, tmp_path, before) == set()


def test_a_served_model_keeps_serving_when_the_alias_moves_to_a_poisoned_version(
    project: Context, logged_model: ModelVersion, outside: Path, tmp_path: Path
) -> None:
    from plinth.serving.app import Server
    from plinth.serving.spec import DeploymentSpec

    server = Server(
        DeploymentSpec.from_yaml("name: web\nmodel: m@champion\n"),
        ctx=project,
        log_predictions=False,
    )
    server.start()
    with plinth.start_run() as run:  # a second version, then poisoned in the ledger
        second = run.log_model(plinth.models.load("m@1").model, "m")
    _poison_model(project, second, "../" * 40 + str(outside).lstrip("/") + "/x")
    plinth.models.set_alias("m", "champion", 2)
    before = _files_under(tmp_path)
    try:
        assert server.refresh() is False  # the poll logs the refusal and keeps serving
        current = server.primary.current
        assert current is not None
        assert current.version is not None
        assert current.version.number == 1
    finally:
        server.close()
    assert _files_under(outside) == set()
    assert _written_since(project, tmp_path, before) == set()


def test_a_flavor_file_not_in_the_manifest_is_refused(
    project: Context, logged_model: ModelVersion
) -> None:
    doc = json.loads(project.blobs.read_bytes(logged_model.manifest_digest))
    doc["flavor"]["files"] = ["../../../../etc/passwd"]
    ref = project.blobs.put_bytes(json.dumps(doc).encode())
    rows = tables.model_versions
    with project.ledger.engine.begin() as conn:
        conn.execute(
            sa.update(rows).where(rows.c.id == logged_model.id).values(manifest_digest=ref.digest)
        )
    with pytest.raises(IntegrityError, match="which its file list does not name"):
        plinth.models.load("m@1")


def test_a_symlink_at_a_model_file_path_is_replaced_not_written_through(
    project: Context, outside: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"untouched")
    (folder / "model.skops").symlink_to(folder / "inner.bin")  # inside: safe_join allows it
    (folder / "inner.bin").symlink_to(victim)  # ... but this hop leads out
    with pytest.raises(InvalidPathError, match="resolves outside"):
        safe_join(folder, "model.skops")
    (folder / "inner.bin").unlink()
    ref = project.blobs.put_bytes(PAYLOAD)
    project.blobs.copy_to(ref.digest, safe_join(folder, "model.skops"))
    assert not (folder / "model.skops").is_symlink()
    assert (folder / "model.skops").read_bytes() == PAYLOAD
    assert victim.read_bytes() == b"untouched"


# -- Dataset checkout ------------------------------------------------------------------------


def _dataset(tmp_path: Path, files: dict[str, bytes]) -> None:
    src = tmp_path / "src"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    datasets.add(src, "d")


def test_checkout_through_a_symlinked_folder_out_of_the_destination_is_refused(
    project: Context, outside: Path, tmp_path: Path
) -> None:
    _dataset(tmp_path, {"sub/file.txt": PAYLOAD, "a.txt": b"a"})
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    for force in (False, True):
        with pytest.raises(InvalidPathError, match="resolves outside") as info:
            datasets.checkout("d", dest, force=force)
        assert "refusing to check out into" in str(info.value)
        assert _files_under(outside) == set()
        assert sorted(p.name for p in dest.iterdir()) == ["sub"]  # nothing written at all


def test_checkout_onto_a_symlinked_file_out_of_the_destination_is_refused(
    project: Context, outside: Path, tmp_path: Path
) -> None:
    _dataset(tmp_path, {"a.txt": PAYLOAD})
    dest = tmp_path / "dest"
    dest.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"untouched")
    (dest / "a.txt").symlink_to(victim)
    with pytest.raises(InvalidPathError, match="resolves outside"):
        datasets.checkout("d", dest, force=True)
    assert victim.read_bytes() == b"untouched"
    assert (dest / "a.txt").is_symlink()


def test_checkout_replaces_a_symlink_inside_the_destination_instead_of_writing_through(
    project: Context, tmp_path: Path
) -> None:
    _dataset(tmp_path, {"a.txt": PAYLOAD})
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "other.txt").write_bytes(b"untouched")
    (dest / "a.txt").symlink_to(dest / "other.txt")
    with pytest.raises(ConflictError):
        datasets.checkout("d", dest)
    datasets.checkout("d", dest, force=True)
    assert not (dest / "a.txt").is_symlink()
    assert (dest / "a.txt").read_bytes() == PAYLOAD
    assert (dest / "other.txt").read_bytes() == b"untouched"


@pytest.mark.parametrize("entry", ATTACK_ENTRIES)
def test_dataset_manifest_entry_escaping_the_checkout_is_refused_and_nothing_written(
    project: Context, outside: Path, tmp_path: Path, entry: str
) -> None:
    entry = _spell(entry, outside)
    _dataset(tmp_path, {"a.txt": b"a"})
    version = datasets.get("d")
    doc = json.loads(project.blobs.read_bytes(version.manifest_digest))
    payload = project.blobs.put_bytes(PAYLOAD)
    doc["files"].append([entry, payload.digest, payload.size])
    ref = project.blobs.put_bytes(json.dumps(doc).encode())
    rows = tables.dataset_versions
    with project.ledger.engine.begin() as conn:
        conn.execute(
            sa.update(rows).where(rows.c.id == version.id).values(manifest_digest=ref.digest)
        )
    dest = tmp_path / "dest"
    with pytest.raises(InvalidPathError, match="refusing to check out into"):
        datasets.checkout("d", dest)
    assert _files_under(outside) == set()
    assert not dest.exists() or list(dest.iterdir()) == []


@pytest.mark.parametrize("reference", ["../secret.csv", "/ABS/secret.csv", "link/secret.csv"])
def test_suite_reference_path_outside_the_suite_folder_is_refused_and_not_read(
    tmp_path: Path, reference: str
) -> None:
    import pyarrow as pa

    from plinth.errors import UsageError
    from plinth.validation import Suite, validate

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("code\nSECRET-VALUE\n", encoding="utf-8")
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "link").symlink_to(outside, target_is_directory=True)
    path = reference.replace("/ABS", str(outside)).replace("../", "../outside/")
    suite_file = suites / "suite.yaml"
    suite_file.write_text(
        f"suite: s\nchecks:\n  - {{check: in_dataset, column: code, path: {json.dumps(path)}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(UsageError) as caught:
        validate(pa.table({"code": ["a"]}), Suite.load(suite_file))
    assert caught.value.field == "checks[0].path"
    assert "SECRET-VALUE" not in str(caught.value) + caught.value.hint
