"""Serving: deployment spec, app factory, prediction log, batch scoring and deploy export.

The top pillar: may import ``plinth.registry``, ``plinth.datasets``, ``plinth.versioning``,
``plinth.monitoring`` (its gauges) and the core; only the interfaces import it.
"""
