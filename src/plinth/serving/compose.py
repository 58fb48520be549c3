"""The compose half of ``plinth deploy export``: the server beside Prometheus and Grafana,
bound to this machine, with the shipped dashboard and scrape config (:mod:`plinth.serving.export`
writes the files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from plinth.errors import NotFoundError
from plinth.guards.environments import check_text_field

__all__ = [
    "GRAFANA_PASSWORD_VARIABLE",
    "OPTIONAL_VARIABLES",
    "STORE_VARIABLES",
    "assets",
    "compose_files",
    "health_probe",
    "yaml_text",
]

#: Store settings the server needs; their values may hold credentials.
STORE_VARIABLES = ("PLINTH_METADATA", "PLINTH_ARTIFACTS")
#: The online store and S3 credentials, passed through from the same Secret when present.
OPTIONAL_VARIABLES = (
    "PLINTH_ONLINE_STORE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
)
#: Grafana's admin password: compose refuses to start Grafana until it is set.
GRAFANA_PASSWORD_VARIABLE = "GRAFANA_ADMIN_PASSWORD"  # noqa: S105 - a variable's name
_COMPOSE_HEADER = f"""\
# Written by `plinth deploy export`. Start with: docker compose up --build
# Prometheus (http://127.0.0.1:9090) and Grafana (http://127.0.0.1:3000) listen on this
# machine only. Grafana has no anonymous access: log in as 'admin' with the password in
# {GRAFANA_PASSWORD_VARIABLE} (export it, or put {GRAFANA_PASSWORD_VARIABLE}=... in a .env
# file next to this one; compose refuses to start without it).
"""


def compose_files(name: str, port: int, project: str) -> dict[str, str]:
    check_text_field(project, "project", where="deploy export")
    probe = health_probe(port)
    compose = {
        "name": name,
        "services": {
            name: {
                "build": ".",
                "image": f"{name}:latest",
                "ports": [f"{port}:{port}"],
                # Compose interpolates '$' in every value: '$$' is a literal '$'.
                "environment": {"PLINTH_PROJECT": project.replace("$", "$$")},
                "env_file": ["plinth.env"],
                "healthcheck": {
                    "test": ["CMD", "python", "-c", probe],
                    "interval": "15s",
                    "timeout": "5s",
                    "retries": 3,
                    "start_period": "30s",
                },
                "restart": "unless-stopped",
            },
            "prometheus": {
                "image": "prom/prometheus:v2.53.0",
                # Loopback only: Prometheus has no authentication of its own.
                "ports": ["127.0.0.1:9090:9090"],
                "volumes": ["./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
                "depends_on": [name],
            },
            "grafana": {
                "image": "grafana/grafana:11.1.0",
                "ports": ["127.0.0.1:3000:3000"],
                "environment": {
                    "GF_AUTH_ANONYMOUS_ENABLED": "false",
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                    "GF_SECURITY_ADMIN_USER": "admin",
                    # Compose interpolates this from the shell or .env and stops if unset.
                    "GF_SECURITY_ADMIN_PASSWORD": (
                        f"${{{GRAFANA_PASSWORD_VARIABLE}:?set {GRAFANA_PASSWORD_VARIABLE}"
                        " to Grafana's admin password}"
                    ),
                },
                "volumes": [
                    "./grafana/provisioning:/etc/grafana/provisioning:ro",
                    "./grafana/dashboards:/var/lib/grafana/dashboards:ro",
                ],
                "depends_on": ["prometheus"],
            },
        },
    }
    datasources = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": "prometheus",
                "type": "prometheus",
                "access": "proxy",
                "url": "http://prometheus:9090",
                "isDefault": True,
            }
        ],
    }
    dashboards = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "plinth",
                "type": "file",
                "options": {"path": "/var/lib/grafana/dashboards"},
            }
        ],
    }
    env_example = "\n".join(
        [
            "# Copy to plinth.env and fill in: the stores the server reads the model from.",
            "# plinth.env holds credentials: keep it out of version control.",
            *(f"{variable}=" for variable in STORE_VARIABLES),
            "# Optional: an online store, S3 credentials for s3:// artifacts.",
            *(f"# {variable}=" for variable in OPTIONAL_VARIABLES),
            "# Grafana's admin password is read by compose itself, not from this file: set",
            f"# {GRAFANA_PASSWORD_VARIABLE} in your shell or a .env file next to compose.yaml.",
            "",
        ]
    )
    return {
        "compose.yaml": _COMPOSE_HEADER + yaml_text(compose),
        "plinth.env.example": env_example,
        "prometheus/prometheus.yml": yaml_text(_compose_prometheus(f"{name}:{port}")),
        "grafana/provisioning/datasources/prometheus.yaml": yaml_text(datasources),
        "grafana/provisioning/dashboards/plinth.yaml": yaml_text(dashboards),
    }


def _compose_prometheus(target: str) -> dict[str, Any]:
    """The shipped Prometheus config with its local job pointed at the compose service."""
    config = yaml.safe_load((assets() / "prometheus" / "prometheus.yml").read_text("utf-8"))
    jobs = [job for job in config["scrape_configs"] if job.get("static_configs")]
    for job in jobs:
        job["static_configs"] = [{"targets": [target]}]
    config["scrape_configs"] = jobs
    assert isinstance(config, dict)
    return config


def assets() -> Path:
    """The ``deploy/`` folder: inside the installed package, else the source checkout's."""
    here = Path(__file__).resolve().parent
    for folder in (here.parent / "_deploy", here.parents[2] / "deploy"):
        if (folder / "grafana" / "plinth-serving.json").is_file():
            return folder
    raise NotFoundError(
        "plinth's deploy assets (Grafana dashboard, Prometheus config) are not installed",
        hint="reinstall plinth, or export with --target kubernetes",
    )


def health_probe(port: int) -> str:
    """A Python one-liner that exits non-zero unless /health answers 200 (slim images lack curl)."""
    url = f"http://127.0.0.1:{port}/health"
    return (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen({url!r}, timeout=3).status != 200)"
    )


def yaml_text(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
