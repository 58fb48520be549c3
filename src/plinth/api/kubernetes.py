"""``plinth server export --target kubernetes``: manifests for several server replicas.

Writes a Deployment (2 replicas by default, liveness and readiness probes on ``/health``,
a non-root read-only container), a Service and a ConfigMap holding ``server.yaml``. The
database URL and the S3 keys come from a Kubernetes Secret *by reference*
(``secretKeyRef``): no secret value is ever written. Replicas need shared state, so the
server must use PostgreSQL and S3 (SQLite files and local folders belong to one machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plinth._version import __version__
from plinth.api.config import ServerConfig
from plinth.errors import ConfigError

__all__ = ["SECRET_KEYS", "export_kubernetes"]

_PORT = 8750
_ROOT = "/srv/plinth"
#: Environment variable -> key of the Secret it is read from.
SECRET_KEYS: dict[str, str] = {
    "PLINTH_SERVER_METADATA": "metadata-url",
    "AWS_ACCESS_KEY_ID": "aws-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key",
}


def _probe(period: int, delay: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/health", "port": "http"},
        "periodSeconds": period,
        "initialDelaySeconds": delay,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def manifests(
    config: ServerConfig, *, name: str, image: str, replicas: int, secret: str
) -> dict[str, dict[str, Any]]:
    """File name -> manifest of the server described by ``config``."""
    if (
        config.metadata is None
        or config.artifacts is None
        or not config.artifacts.startswith("s3://")
    ):
        raise ConfigError(
            "replicas need shared state: this server keeps its metadata or artifacts on one "
            "machine (SQLite under its root, or a local folder)",
            hint="initialise it with --metadata postgresql+psycopg://... and --artifacts "
            "s3://BUCKET/PREFIX, then export again",
            field="metadata",
        )
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "server"}
    env: list[dict[str, Any]] = [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for var, key in SECRET_KEYS.items()
    ]
    if config.s3_endpoint:
        env.append({"name": "PLINTH_SERVER_S3_ENDPOINT", "value": config.s3_endpoint})
    container = {
        "name": "server",
        "image": image,
        "args": [
            "plinth",
            "server",
            "start",
            "--root",
            _ROOT,
            "--host",
            "0.0.0.0",  # noqa: S104 - inside the pod
            "--port",
            str(_PORT),
        ],
        "ports": [{"name": "http", "containerPort": _PORT}],
        "env": env,
        "readinessProbe": _probe(period=5, delay=1),
        "livenessProbe": _probe(period=10, delay=5),
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {
                "name": "config",
                "mountPath": f"{_ROOT}/server.yaml",
                "subPath": "server.yaml",
                "readOnly": True,
            },
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir,
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{name}-config"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    import yaml

    # The URL comes from the Secret; TLS ends at the Ingress, so cookies must be Secure.
    file_config = {k: v for k, v in config.to_file().items() if k != "metadata"}
    file_config["tls"] = True
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-config", "labels": labels},
        "data": {"server.yaml": yaml.safe_dump(file_config, sort_keys=True)},
    }
    return {"deployment.yaml": deployment, "service.yaml": service, "configmap.yaml": configmap}


def _readme(name: str, secret: str) -> str:
    keys = "\n".join(f"    --from-literal={key}=..." for key in SECRET_KEYS.values())
    return (
        f"# {name}: the plinth team server on Kubernetes\n\n"
        "Create the Secret first (the values never appear in these files):\n\n"
        f"    kubectl create secret generic {secret} \\\n{keys}\n\n"
        "`metadata-url` is the PostgreSQL URL (with its password); the AWS keys reach S3.\n"
        "Then: `kubectl apply -f .` and put a TLS-terminating Ingress in front of the Service\n"
        "(server.yaml sets `tls: true`, so cookies are Secure). Initialise users and tokens\n"
        "once with `plinth server init` against the same database, from any machine.\n"
    )


def export_kubernetes(
    config: ServerConfig,
    out: Path,
    *,
    name: str = "plinth-server",
    image: str | None = None,
    registry: str | None = None,
    replicas: int = 2,
    secret: str = "plinth-server",  # noqa: S107 - the Secret's name
) -> list[Path]:
    """Write the manifests (and a README) into ``out``; the paths written."""
    import yaml

    image = image or f"plinth:{__version__}"
    if registry:
        image = f"{registry.rstrip('/')}/{image}"
    files = manifests(config, name=name, image=image, replicas=replicas, secret=secret)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, manifest in files.items():
        path = out / file_name
        path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        written.append(path)
    readme = out / "README.md"
    readme.write_text(_readme(name, secret), encoding="utf-8")
    written.append(readme)
    return written
