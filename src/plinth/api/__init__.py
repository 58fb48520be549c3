"""The team server: the ledger and the blob store behind a REST API, with users and roles.

Owns the Starlette application (:func:`plinth.api.app.create_app`), the route table every
resource module contributes to (:class:`plinth.api.routes.Endpoint`, one module per
resource, each exposing ``ENDPOINTS``), authentication (:mod:`plinth.api.auth`: API tokens
and browser sessions), the per-project ledgers and blob stores (:class:`plinth.api.spaces.Spaces`)
and the server's configuration (:class:`plinth.api.config.ServerConfig`).

May import: the pillars, the core (ledger, storage, guards, errors) and the ``server``
extra (starlette, uvicorn, argon2-cffi, python-multipart). Never the CLI or the web pages
(:mod:`plinth.ui` sits above; the app finds its pages by module name).
"""
