"""Deployment specs: strict parsing, located errors, defaults, digest, ledger versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from plinth.context import Context
from plinth.errors import UsageError
from plinth.serving.spec import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_ROWS,
    DeploymentSpec,
    save_deployment,
)

FULL = """\
name: delays
model: delays@champion
canary: {model: delays@challenger, traffic: 0.1}
shadow: delays@candidate
logging: {sample: 0.5}
limits: {max_rows: 100, max_body_bytes: 2048}
"""


def test_full_spec_parses() -> None:
    spec = DeploymentSpec.from_yaml(FULL)
    assert spec.name == "delays"
    assert spec.model == "delays@champion"
    assert spec.canary is not None
    assert (spec.canary.model, spec.canary.traffic) == ("delays@challenger", 0.1)
    assert spec.shadow == "delays@candidate"
    assert spec.sample == 0.5
    assert (spec.max_rows, spec.max_body_bytes) == (100, 2048)


def test_defaults() -> None:
    spec = DeploymentSpec.from_yaml("name: d\nmodel: m@champion\n")
    assert spec.canary is None
    assert spec.shadow is None
    assert spec.sample == 1.0
    assert spec.max_rows == DEFAULT_MAX_ROWS == 10_000
    assert spec.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 10 * 1024 * 1024


def test_digest_follows_the_text() -> None:
    a = DeploymentSpec.from_yaml(FULL)
    assert a.digest == DeploymentSpec.from_yaml(FULL).digest
    assert a.digest != DeploymentSpec.from_yaml(FULL + "# changed\n").digest
    assert len(a.digest) == 64


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("name: d\nmodel: m@champion\nlimts: {}\n", "limts", "did you mean 'limits'"),
        (
            "name: d\nmodel: m@champion\ncanary: {model: m@c, trafic: 0.1}\n",
            "canary.trafic",
            "traffic",
        ),
        ("name: d\nmodel: m\n", "model", "NAME@ALIAS"),
        ("name: d\n", "model", "NAME@ALIAS"),
        (
            "name: d\nmodel: m@champion\ncanary: {model: m@c, traffic: 1.5}\n",
            "canary.traffic",
            "between 0 and 1",
        ),
        (
            "name: d\nmodel: m@champion\ncanary: {model: m@c, traffic: 0}\n",
            "canary.traffic",
            "between 0 and 1",
        ),
        ("name: d\nmodel: m@champion\nlimits: {max_rows: -1}\n", "limits.max_rows", "positive"),
        (
            "name: d\nmodel: m@champion\nlimits: {max_body_bytes: 0}\n",
            "limits.max_body_bytes",
            "positive",
        ),
        ("name: d\nmodel: m@champion\nlogging: {sample: 2}\n", "logging.sample", "between 0 and 1"),
        ("name: 'bad name'\nmodel: m@champion\n", "name", "name"),
        ("name: d\nmodel: m@champion\nshadow: 3\n", "shadow", "NAME@ALIAS"),
        ("- just\n- a list\n", "deployment", "mapping"),
    ],
)
def test_bad_specs_name_the_key(text: str, field: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        DeploymentSpec.from_yaml(text, where="dep.yaml")
    assert caught.value.field == field
    assert words in caught.value.message
    assert caught.value.message.startswith("dep.yaml")


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dep.yaml"
    path.write_text("name: d\nmodel: [unclosed\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"dep.yaml, line \d+"):
        DeploymentSpec.load(path)
    with pytest.raises(UsageError, match="no deployment file"):
        DeploymentSpec.load(tmp_path / "missing.yaml")


def test_saving_twice_is_one_version(project: Context) -> None:
    spec = DeploymentSpec.from_yaml("name: d\nmodel: m@champion\n")
    first = save_deployment(spec, project)
    again = save_deployment(spec, project)
    assert (first.id, first.number) == (again.id, 1)
    assert project.blobs.read_bytes(first.digest) == spec.text.encode()
    changed = save_deployment(DeploymentSpec.from_yaml("name: d\nmodel: m@challenger\n"), project)
    assert changed.number == 2
    assert changed.spec["model"] == "m@challenger"
