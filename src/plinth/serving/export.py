"""Infrastructure as code: a deployment YAML as a container image plus Kubernetes or compose.

:func:`export_deployment` resolves the deployment's model in the registry, takes the
environment its run recorded and writes a build folder::

    Dockerfile  requirements.txt  deployment.yaml  [the files it names, e.g. its suite]
    k8s/configmap.yaml  k8s/deployment.yaml  k8s/service.yaml  k8s/hpa.yaml  k8s/kustomization.yaml
    # or, for --target compose:
    compose.yaml  plinth.env.example  prometheus/prometheus.yml  grafana/...

Every YAML file is written with ``yaml.safe_dump``, never by pasting text into YAML; every
value that reaches the Dockerfile or requirements (the recorded Python version, platform and
packages, the image name) is validated first by :mod:`plinth.guards.environments`, and an
environment record that fails is refused before any file is written. The files the
deployment names (its ``validate.suite``) are copied byte for byte beside ``deployment.yaml``
at the same relative path, resolved with :func:`plinth.guards.paths.safe_join` as ``plinth
serve`` does: a path escaping the deployment's folder is refused, nothing written. Store URIs
(``PLINTH_METADATA``, ``PLINTH_ARTIFACTS``, ``PLINTH_ONLINE_STORE``) may hold passwords, so
they are never written: Kubernetes reads them from the Secret ``<name>-stores``, compose
from ``plinth.env``. The compose file publishes Prometheus and Grafana on 127.0.0.1 only,
with Grafana's anonymous access off: log in as ``admin`` with ``GRAFANA_ADMIN_PASSWORD``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError
from plinth.guards.environments import (
    check_image_reference,
    check_text_field,
    comment_line,
    python_major_minor,
)
from plinth.guards.paths import normalize_artifact_path
from plinth.serving.compose import (
    OPTIONAL_VARIABLES,
    STORE_VARIABLES,
    assets,
    compose_files,
    health_probe,
    yaml_text,
)
from plinth.serving.spec import DeploymentSpec

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import Environment, ModelVersion

__all__ = ["TARGETS", "dns_name", "export_deployment", "read_name"]

TARGETS: tuple[str, ...] = ("kubernetes", "compose")

_APP_DIR = "/app"
_APP_SPEC = f"{_APP_DIR}/deployment.yaml"
#: A named file's relative path: '/'-separated segments of these characters only, so that it
#: is a literal Dockerfile COPY source (no glob, no $ substitution) and a plain mount path.
_NAMED_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_NAMED_MAX = 200
#: ConfigMap keys: https://kubernetes.io/docs/concepts/configuration/configmap/
_CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_DNS = re.compile(r"[^a-z0-9-]+")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def dns_name(name: str) -> str:
    """``name`` as a DNS-1123 label (Kubernetes object names): ``Delays_v2`` -> ``delays-v2``."""
    label = _DNS.sub("-", name.lower()).strip("-")[:63].rstrip("-")
    if not label:
        raise UsageError(
            f"deployment name {name!r} has no letter or digit",
            hint="name the deployment with letters, digits and '-', e.g. name: delays",
            field="name",
        )
    return label


def export_deployment(
    spec_path: str | Path,
    target: str,
    out_dir: str | Path,
    *,
    image: str | None = None,
    port: int = 8000,
    replicas: int = 2,
    allow_embedded: bool = False,
    ctx: Context | None = None,
) -> list[Path]:
    """Write the build folder for ``target`` (``kubernetes`` or ``compose``); the paths written.

    ``image`` names the image the manifests run (default ``<name>:<model>-v<number>``);
    ``replicas`` is the Deployment's and the autoscaler's minimum. A project on SQLite or a
    local artifact folder is refused (a container cannot reach it) unless ``allow_embedded``.
    """
    from plinth.context import resolve_context
    from plinth.serving._requirements import runtime_requirements

    if target not in TARGETS:
        raise UsageError(
            f"unknown deploy target {target!r}",
            hint="use one of: " + ", ".join(TARGETS),
            field="target",
        )
    if replicas < 1:
        raise UsageError(f"replicas must be at least 1, not {replicas}", field="replicas")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UsageError(f"port {port!r} is not a TCP port", field="port")
    if image is not None:
        check_image_reference(image, field="image")
    spec = DeploymentSpec.load(spec_path)
    _check_name(spec.name, spec_path)
    context = resolve_context(ctx)
    version = _resolve(spec.model, "model", spec_path, context)
    flavors = [version.flavor]
    if spec.canary is not None:
        flavors.append(_resolve(spec.canary.model, "canary", spec_path, context).flavor)
    if spec.shadow is not None:
        flavors.append(_resolve(spec.shadow, "shadow", spec_path, context).flavor)
    env = _environment(version, context)
    name = dns_name(spec.name)
    tag = check_image_reference(image or f"{name}:{dns_name(version.model)}-v{version.number}")
    named = _named_files(spec, spec_path)
    out = Path(out_dir)
    files: dict[str, str | bytes] = {
        "Dockerfile": _dockerfile(env, port, list(named)),
        "requirements.txt": runtime_requirements(env, flavors),
        "deployment.yaml": spec.yaml_text,
    }
    if target == "kubernetes":
        files.update(
            _kubernetes(name, spec.yaml_text, named, tag, port, replicas, context.project.name)
        )
    else:
        files.update(compose_files(name, port, context.project.name))
    generated = [*files, "grafana/dashboards/plinth-serving.json"]
    for rel in named:
        _check_no_clash(rel, generated, spec_path)
    files.update(named)
    if not allow_embedded:
        _check_reachable(context)  # last: the record's own faults are reported first
    written = [_write(out / rel, content) for rel, content in files.items()]
    if target == "compose":
        dashboard = assets() / "grafana" / "plinth-serving.json"
        target_path = out / "grafana" / "dashboards" / dashboard.name
        target_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dashboard, target_path)
        written.append(target_path)
    return written


# -- reading the deployment ------------------------------------------------------------------


def read_name(spec_path: str | Path) -> str:
    """The ``name`` of a deployment YAML; UsageError when the file is missing or malformed."""
    return DeploymentSpec.load(spec_path).name


def _check_name(name: str, path: str | Path) -> None:
    # fullmatch: ``re.match`` with ``$`` lets a trailing newline through.
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{path}: 'name' must be letters, digits, '_', '.' and '-', got {name!r:.60}",
            hint="name the deployment like 'delays'",
            field="name",
        )


def _named_files(spec: DeploymentSpec, spec_path: str | Path) -> dict[str, bytes]:
    """The files the deployment names (its ``validate.suite``): relative path -> bytes.

    Each is resolved as ``plinth serve`` resolves it (safe-joined inside the deployment
    file's folder), so the export refuses what the server would refuse.
    """
    named: dict[str, bytes] = {}
    if spec.suite is None:
        return named
    where = f"{spec_path}: 'validate.suite'"
    source = spec.suite_path()  # UsageError when it escapes the deployment's folder
    rel = normalize_artifact_path(spec.suite)  # what safe_join joined: '/'-separated
    if len(rel) > _NAMED_MAX or not all(_NAMED_SEGMENT.fullmatch(s) for s in rel.split("/")):
        raise UsageError(
            f"{where} {rel!r:.80} cannot be exported: a path to copy into the image must be "
            f"at most {_NAMED_MAX} characters of letters, digits, '_', '.' and '-' in "
            "'/'-separated folders, none starting with '.' or '-'",
            hint="rename the suite file, e.g. suite: serving_suite.yaml",
            field="validate.suite",
        )
    try:
        content = source.read_bytes()
        content.decode("utf-8")  # the ConfigMap holds text; plinth serve reads it as UTF-8
    except FileNotFoundError:
        raise UsageError(
            f"{where}: no suite file {source}",
            hint="create the suite, or name it relative to the deployment file's folder",
            field="validate.suite",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{where}: cannot read suite file {source}: {exc}", field="validate.suite"
        ) from None
    named[rel] = content
    return named


def _check_no_clash(rel: str, generated: list[str], spec_path: str | Path) -> None:
    """Refuse a named file that would overwrite (or sit inside) a file the export writes."""
    for other in generated:
        if rel == other or rel.startswith(other + "/") or other.startswith(rel + "/"):
            raise UsageError(
                f"{spec_path}: 'validate.suite' {rel!r} is where the export writes {other}",
                hint="rename the suite file, e.g. suite: serving_suite.yaml",
                field="validate.suite",
            )


def _check_reachable(ctx: Context) -> None:
    """Refuse stores only this machine can reach: SQLite metadata, a local artifact folder."""
    metadata, artifacts = ctx.settings.metadata, ctx.settings.artifacts
    local = []
    if metadata.startswith("sqlite"):
        local.append(f"its metadata in SQLite ({metadata})")  # a file path: no password
    if "://" not in artifacts or artifacts.startswith("file://"):
        local.append(f"its artifacts in a local folder ({artifacts})")
    if local:
        raise UsageError(
            f"project {ctx.project.name!r} keeps {' and '.join(local)}: a container cannot "
            "reach them, so the exported server would not find its model",
            hint="point PLINTH_METADATA at PostgreSQL and PLINTH_ARTIFACTS at S3 (see "
            "docs/serving.md), or pass --allow-embedded (allow_embedded=True) if you mount "
            "them into the container yourself",
            field="metadata" if metadata.startswith("sqlite") else "artifacts",
        )


def _resolve(ref: str, key: str, path: str | Path, ctx: Context) -> ModelVersion:
    from plinth.registry import api

    try:
        return api.get(ref, ctx=ctx)
    except NotFoundError as exc:
        raise NotFoundError(
            f"{path}: {key} {ref!r} is not in the registry: {exc.message}",
            hint=exc.hint or "log it with run.log_model and set the alias: plinth models alias",
            field=key,
        ) from None


def _environment(version: ModelVersion, ctx: Context) -> Environment:
    environment_id = version.environment_id
    if environment_id is None and version.run_id is not None:
        environment_id = ctx.ledger.runs.get_run(version.run_id).environment_id
    if environment_id is None:
        raise UsageError(
            f"model version {version.ref} has no environment recorded",
            hint="log the model inside plinth.start_run, which records the environment",
            field="model",
        )
    from plinth.versioning.env import check_recorded_environment

    env = ctx.ledger.environments.get(environment_id)
    # The record may have been written by anyone who can write the ledger.
    check_recorded_environment(env)
    return env


# -- the image -------------------------------------------------------------------------------


def _dockerfile(env: Environment, port: int, named: list[str]) -> str:
    where = f"environment {env.id!r:.40}"
    major_minor = python_major_minor(env.python, where=where)
    probe = health_probe(port)
    cmd = ["plinth", "serve", _APP_SPEC, "--host", "0.0.0.0", "--port", str(port)]  # noqa: S104
    return "\n".join(
        [
            comment_line(f"plinth environment {env.digest}", where=where, field="digest"),
            comment_line(
                f"Recorded with Python {env.python} on {env.platform}.",
                where=where,
                field="platform",
            ),
            "# Written by `plinth deploy export`; build in this folder: docker build -t IMAGE .",
            f"FROM python:{major_minor}-slim",
            "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
            "WORKDIR /app",
            "COPY requirements.txt /app/requirements.txt",
            "RUN pip install --no-cache-dir -r /app/requirements.txt",
            f"COPY deployment.yaml {_APP_SPEC}",
            # Paths checked by _named_files (no space, glob or '$'); JSON form all the same.
            *(f"COPY {json.dumps([rel, f'{_APP_DIR}/{rel}'])}" for rel in named),
            "RUN useradd --create-home --uid 10001 plinth",
            "USER 10001",
            f"EXPOSE {int(port)}",
            "HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \\",
            f"  CMD {json.dumps(['python', '-c', probe])}",
            f"CMD {json.dumps(cmd)}",
            "",
        ]
    )


# -- Kubernetes ------------------------------------------------------------------------------


def _kubernetes(
    name: str,
    spec_text: str,
    named: dict[str, bytes],
    image: str,
    port: int,
    replicas: int,
    project: str,
) -> dict[str, str]:
    # Every value reaches YAML through safe_dump (quoted as needed); these are also checked
    # so that a manifest never carries a multi-line or control-character label or value.
    check_text_field(project, "project", where="deploy export")
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "plinth"}
    config = f"{name}-config"
    secret = f"{name}-stores"
    # One ConfigMap key per file, each mounted by subPath where the server reads it (a
    # folder mount on /app would hide the image's files).
    data = {"deployment.yaml": spec_text}
    mounts = [{"name": "deployment", "mountPath": _APP_SPEC, "subPath": "deployment.yaml"}]
    hashed = hashlib.sha256(spec_text.encode("utf-8"))
    for rel, content in named.items():
        key = _configmap_key(rel, data)
        data[key] = content.decode("utf-8")
        mounts.append({"name": "deployment", "mountPath": f"{_APP_DIR}/{rel}", "subPath": key})
        hashed.update(b"\0" + rel.encode("utf-8") + b"\0" + content)
    digest = hashed.hexdigest()
    env: list[dict[str, Any]] = [{"name": "PLINTH_PROJECT", "value": project}]
    for variable in STORE_VARIABLES + OPTIONAL_VARIABLES:
        ref: dict[str, Any] = {"name": secret, "key": variable}
        if variable in OPTIONAL_VARIABLES:
            ref["optional"] = True
        env.append({"name": variable, "valueFrom": {"secretKeyRef": ref}})
    container = {
        "name": "serve",
        "image": image,
        "args": ["plinth", "serve", _APP_SPEC, "--host", "0.0.0.0", "--port", str(port)],  # noqa: S104
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": _probe("/ready", period=5, failures=3),
        "livenessProbe": _probe("/health", period=10, failures=3, delay=10),
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
        "volumeMounts": mounts,
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                        # A new deployment YAML or suite changes the pod template: pods roll.
                        "plinth.dev/deployment-sha256": digest,
                    },
                },
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "deployment", "configMap": {"name": config}}],
                },
            },
        },
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config, "labels": labels},
        "data": data,
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": {"app.kubernetes.io/name": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": replicas,
            "maxReplicas": max(replicas * 5, 10),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }
    resources = ["configmap.yaml", "deployment.yaml", "service.yaml", "hpa.yaml"]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    }
    return {
        "k8s/configmap.yaml": yaml_text(configmap),
        "k8s/deployment.yaml": yaml_text(deployment),
        "k8s/service.yaml": yaml_text(service),
        "k8s/hpa.yaml": yaml_text(hpa),
        "k8s/kustomization.yaml": yaml_text(kustomization),
    }


def _configmap_key(rel: str, taken: dict[str, str]) -> str:
    """A ConfigMap key for the file at ``rel`` (keys hold no '/'), unique among ``taken``."""
    base = rel.replace("/", "_")
    key, n = base, 1
    while key in taken or not _CONFIGMAP_KEY.fullmatch(key):
        n += 1
        key = f"file{n}-{base}"[:253]
    return key


def _probe(path: str, *, period: int, failures: int, delay: int = 0) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }
    if delay:
        probe["initialDelaySeconds"] = delay
    return probe


# -- compose ---------------------------------------------------------------------------------


def _write(path: Path, content: str | bytes) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)  # a named file, byte for byte
        else:
            path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}", field="output") from None
    return path
