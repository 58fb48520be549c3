"""``plinth deploy export``: the Dockerfile, Kubernetes manifests and compose file it writes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import plinth
from plinth.context import Context
from plinth.errors import NotFoundError, UsageError
from plinth.serving.export import dns_name, export_deployment

ROOT = Path(__file__).resolve().parents[2]
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SPEC = """\
# served by the platform team
name: Delays_Prod
model: m@champion
canary: {model: m@1, traffic: 0.1}
logging: {sample: 0.5}
limits: {max_rows: 100, max_body_bytes: 65536}
"""


@pytest.fixture
def spec_file(project: Context) -> Path:
    """A project with model ``m`` (champion = version 1) and a deployment file serving it."""
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    with plinth.start_run(experiment="t") as run:
        run.log_model(model, name="m", input_example=frame)
    plinth.models.set_alias("m", "champion", 1)
    path = Path("deployment.yaml")
    path.write_text(SPEC, encoding="utf-8")
    return path


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _recorded_environment(ctx: Context) -> Any:
    version = plinth.models.get("m@champion", ctx=ctx)
    run = ctx.ledger.runs.get_run(version.run_id or "")
    return ctx.ledger.environments.get(version.environment_id or run.environment_id or "")


def test_kubernetes_manifests_are_well_formed(
    project: Context, spec_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    written = export_deployment(
        spec_file, "kubernetes", out, replicas=3, allow_embedded=True, ctx=project
    )

    assert {p.relative_to(out).as_posix() for p in written} == {
        "Dockerfile",
        "requirements.txt",
        "deployment.yaml",
        "k8s/configmap.yaml",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/hpa.yaml",
        "k8s/kustomization.yaml",
    }
    configmap = _load(out / "k8s/configmap.yaml")
    deployment = _load(out / "k8s/deployment.yaml")
    service = _load(out / "k8s/service.yaml")
    hpa = _load(out / "k8s/hpa.yaml")
    kustomization = _load(out / "k8s/kustomization.yaml")
    assert (configmap["apiVersion"], configmap["kind"]) == ("v1", "ConfigMap")
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    for doc in (configmap, deployment, service, hpa):
        assert DNS_1123.match(doc["metadata"]["name"]), doc["metadata"]["name"]
    assert deployment["metadata"]["name"] == "delays-prod"

    # The ConfigMap carries the deployment file exactly as written, comments included.
    assert configmap["data"] == {"deployment.yaml": SPEC}
    assert (out / "deployment.yaml").read_text(encoding="utf-8") == SPEC

    spec = deployment["spec"]
    pod = spec["template"]
    assert spec["replicas"] == 3
    assert spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "delays-prod:m-v1"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["args"][:3] == ["plinth", "serve", "/app/deployment.yaml"]
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])

    # Store URIs come from a Secret by reference, never as values.
    env = {item["name"]: item for item in container["env"]}
    for variable in ("PLINTH_METADATA", "PLINTH_ARTIFACTS"):
        assert "value" not in env[variable]
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "delays-prod-stores", "key": variable}
    assert env["PLINTH_PROJECT"]["value"] == project.project.name

    # The ConfigMap's file is mounted where the container's command reads it.
    (mount,) = container["volumeMounts"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert mount["mountPath"] == "/app/deployment.yaml"
    assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    assert mount["subPath"] in configmap["data"]

    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["maxReplicas"] >= 3
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"

    for resource in kustomization["resources"]:
        assert (out / "k8s" / resource).is_file()


def test_dockerfile_installs_the_recorded_environment(
    project: Context, spec_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export_deployment(spec_file, "kubernetes", out, allow_embedded=True, ctx=project)
    env = _recorded_environment(project)
    major_minor = ".".join(env.python.split(".")[:2])

    dockerfile = (out / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line for line in dockerfile.splitlines() if line and line[0] != "#"]
    assert instructions[0] == f"FROM python:{major_minor}-slim"
    assert "RUN pip install --no-cache-dir -r /app/requirements.txt" in instructions
    assert "COPY deployment.yaml /app/deployment.yaml" in instructions
    healthcheck = dockerfile[dockerfile.index("HEALTHCHECK") :]
    assert "/health" in healthcheck.split("\nCMD ")[0]
    cmd = next(line for line in instructions if line.startswith("CMD "))
    assert json.loads(cmd[4:]) == [
        "plinth",
        "serve",
        "/app/deployment.yaml",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--port",
        "8000",
    ]

    requirements = (out / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(
        line.split("  #")[0].split("==", 1) for line in requirements if "==" in line.split("#")[0]
    )
    # every pin is the recorded version; the serving packages are there, the tools are not
    for name, version in pins.items():
        if not name.startswith("plinth"):
            assert env.packages[name] == version, name
    assert {"scikit-learn", "numpy", "scipy", "pyarrow"} <= set(pins)
    assert not {"pytest", "mypy", "moto", "ruff"} & set(pins)
    serve = [line for line in requirements if line.startswith("plinth[serve]")]
    assert len(serve) == 1
    assert not [line for line in requirements if line.startswith("plinth==")]


def test_compose_file_runs_the_server_with_prometheus_and_grafana(
    project: Context, spec_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    written = export_deployment(spec_file, "compose", out, allow_embedded=True, ctx=project)

    assert out / "compose.yaml" in written
    assert not (out / "k8s").exists()
    compose = _load(out / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"delays-prod", "prometheus", "grafana"}
    server = services["delays-prod"]
    assert server["build"] == "."
    assert server["ports"] == ["8000:8000"]
    assert server["env_file"] == ["plinth.env"]
    assert server["healthcheck"]["test"][0] == "CMD"
    assert "/health" in " ".join(server["healthcheck"]["test"])
    # The dashboards are published on this machine only, and Grafana asks for a login.
    assert services["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"

    # Every host file a service mounts is in the folder.
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            assert (out / host).exists(), volume
    prometheus = _load(out / "prometheus/prometheus.yml")
    targets = [
        t
        for job in prometheus["scrape_configs"]
        for c in job["static_configs"]
        for t in c["targets"]
    ]
    assert targets == ["delays-prod:8000"]
    shipped = json.loads((ROOT / "deploy/grafana/plinth-serving.json").read_text())
    copied = json.loads((out / "grafana/dashboards/plinth-serving.json").read_text())
    assert copied == shipped
    datasources = _load(out / "grafana/provisioning/datasources/prometheus.yaml")
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    example = (out / "plinth.env.example").read_text(encoding="utf-8")
    assert "PLINTH_METADATA=\n" in example


# A suite in a sub-folder, with a CRLF line and a non-ASCII comment: copied byte for byte.
SUITE = (
    "# contrôles à l'entrée\r\n"
    "suite: serving\n"
    "checks:\n"
    "  - {check: between, column: a, min: 0, max: 10}\n"
).encode()


@pytest.fixture
def suite_spec(spec_file: Path) -> Path:
    """``spec_file`` validating requests with ``suites/serving.yaml`` beside it."""
    (spec_file.parent / "suites").mkdir()
    (spec_file.parent / "suites" / "serving.yaml").write_bytes(SUITE)
    spec_file.write_text(SPEC + "validate: {suite: suites/serving.yaml}\n", encoding="utf-8")
    return spec_file


def _served_suite_path(spec_text: str) -> str:
    """Where ``plinth serve /app/deployment.yaml`` looks for the suite."""
    from dataclasses import replace

    from plinth.serving.spec import DeploymentSpec

    spec = replace(DeploymentSpec.from_yaml(spec_text), base_dir=Path("/app"))
    return spec.suite_path().as_posix()


@pytest.mark.parametrize("target", ["kubernetes", "compose"])
def test_the_serving_suite_is_exported_with_the_deployment(
    project: Context, suite_spec: Path, tmp_path: Path, target: str
) -> None:
    from plinth.serving.spec import DeploymentSpec
    from plinth.validation import Suite

    out = tmp_path / "out"
    written = export_deployment(suite_spec, target, out, allow_embedded=True, ctx=project)

    copied = out / "suites" / "serving.yaml"
    assert copied in written
    assert copied.read_bytes() == SUITE
    # The exported folder serves as is: its deployment finds its suite.
    exported = DeploymentSpec.load(out / "deployment.yaml")
    assert exported.suite_path().resolve() == copied.resolve()
    assert Suite.load(exported.suite_path()).name == "serving"

    served = _served_suite_path(exported.yaml_text)
    assert served == "/app/suites/serving.yaml"
    dockerfile = (out / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert 'COPY ["suites/serving.yaml", "/app/suites/serving.yaml"]' in dockerfile
    assert dockerfile.index("COPY deployment.yaml /app/deployment.yaml") < dockerfile.index(
        'COPY ["suites/serving.yaml", "/app/suites/serving.yaml"]'
    )
    if target == "compose":
        server = _load(out / "compose.yaml")["services"]["delays-prod"]
        assert server["build"] == "."  # the image, built from the Dockerfile above, has it
        return

    configmap = _load(out / "k8s/configmap.yaml")
    deployment = _load(out / "k8s/deployment.yaml")
    assert configmap["data"]["deployment.yaml"] == exported.yaml_text
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounted = {}
    for mount in container["volumeMounts"]:
        assert volumes[mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
        mounted[mount["mountPath"]] = configmap["data"][mount["subPath"]]
    assert mounted == {
        "/app/deployment.yaml": exported.yaml_text,
        served: SUITE.decode("utf-8"),
    }
    # A changed suite rolls the pods.
    digest = pod["metadata"]["annotations"]["plinth.dev/deployment-sha256"]
    (suite_spec.parent / "suites" / "serving.yaml").write_bytes(SUITE + b"# v2\n")
    export_deployment(suite_spec, target, tmp_path / "v2", allow_embedded=True, ctx=project)
    again = _load(tmp_path / "v2" / "k8s/deployment.yaml")["spec"]["template"]
    assert again["metadata"]["annotations"]["plinth.dev/deployment-sha256"] != digest


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        ("../outside.yaml", "'..' segment"),
        ("/etc/passwd", "absolute"),
        ("escape/serving.yaml", "resolves outside"),  # a symlink out of the folder
        ("missing.yaml", "no suite file"),
        ("has space.yaml", "cannot be exported"),
        ("Dockerfile", "where the export writes Dockerfile"),
        ("k8s/configmap.yaml", "where the export writes k8s/configmap.yaml"),
    ],
)
def test_a_suite_the_server_could_not_read_is_refused_with_nothing_written(
    project: Context, spec_file: Path, tmp_path: Path, suite: str, message: str
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "serving.yaml").write_bytes(SUITE)
    (tmp_path / "outside.yaml").write_bytes(SUITE)
    (spec_file.parent / "escape").symlink_to(outside, target_is_directory=True)
    for name in ("has space.yaml", "Dockerfile"):
        (spec_file.parent / name).write_bytes(SUITE)
    (spec_file.parent / "k8s").mkdir()
    (spec_file.parent / "k8s" / "configmap.yaml").write_bytes(SUITE)
    spec_file.write_text(SPEC + f"validate: {{suite: {json.dumps(suite)}}}\n", encoding="utf-8")

    out = tmp_path / "out"
    with pytest.raises(UsageError, match=re.escape(message)):
        export_deployment(spec_file, "kubernetes", out, allow_embedded=True, ctx=project)
    assert not out.exists()


@pytest.mark.parametrize("target", ["kubernetes", "compose"])
def test_no_secret_is_ever_written(
    project: Context,
    spec_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
) -> None:
    secret = "hunter2-s3cr3t"
    monkeypatch.setenv("PLINTH_METADATA", f"postgresql+psycopg://svc:{secret}@db:5432/plinth")
    monkeypatch.setenv("PLINTH_ARTIFACTS", f"s3://bucket/{secret}")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    out = tmp_path / "out"
    written = export_deployment(spec_file, target, out, allow_embedded=True, ctx=project)

    every_file = [p for p in out.rglob("*") if p.is_file()]
    assert sorted(every_file) == sorted(written)
    for path in every_file:
        assert secret not in path.read_text(encoding="utf-8"), path


def test_names_become_dns_labels() -> None:
    assert dns_name("Delays_Prod.v2") == "delays-prod-v2"
    assert dns_name("--x--") == "x"
    assert DNS_1123.match(dns_name("a" * 100))
    with pytest.raises(UsageError, match="no letter or digit"):
        dns_name("__")


def test_unknown_target_and_model_are_refused(
    project: Context, spec_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="unknown deploy target 'helm'"):
        export_deployment(spec_file, "helm", tmp_path / "out", ctx=project)
    spec_file.write_text("name: d\nmodel: m@missing\n", encoding="utf-8")
    with pytest.raises(NotFoundError, match=r"model 'm@missing' is not in the registry"):
        export_deployment(spec_file, "kubernetes", tmp_path / "out", ctx=project)
    spec_file.write_text("name: d\nmodel: m@1\nshadow: nope@1\n", encoding="utf-8")
    with pytest.raises(NotFoundError, match=r"shadow 'nope@1'"):
        export_deployment(spec_file, "kubernetes", tmp_path / "out", ctx=project)
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_folder_named_after_the_deployment(
    spec_file: Path, cli: Callable[..., Any]
) -> None:
    result = cli(
        "deploy", "export", str(spec_file), "--target", "kubernetes", "--allow-embedded", "--json"
    )
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["output"] == "deploy-delays-prod"
    assert "deploy-delays-prod/k8s/hpa.yaml" in data["files"]
    assert all(Path(p).is_file() for p in data["files"])

    result = cli(
        "deploy", "export", str(spec_file), "--target", "compose", "-o", "c", "--allow-embedded"
    )
    assert result.code == 0, result.err
    assert "c/compose.yaml" in result.out.splitlines()


def test_cli_errors_exit_2_with_a_precise_message(spec_file: Path, cli: Callable[..., Any]) -> None:
    result = cli("deploy", "export", str(spec_file), "--target", "helm")
    assert result.code == 2
    assert "'helm' is not one of 'kubernetes', 'compose'" in result.err

    result = cli("deploy", "export", "missing.yaml", "--target", "kubernetes")
    assert result.code == 2
    assert "missing.yaml" in result.err

    spec_file.write_text("name: d\nmodel: other@champion\n", encoding="utf-8")
    result = cli("deploy", "export", str(spec_file), "--target", "compose")
    assert result.code == 2
    assert "model 'other@champion' is not in the registry" in result.err
    assert not Path("deploy-d").exists()
