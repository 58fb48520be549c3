"""Serving: deployment spec, app factory, prediction log, batch scoring and deploy export."""
