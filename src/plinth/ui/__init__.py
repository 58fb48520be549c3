"""The web UI of ``plinth server``: server-rendered pages over the project ledgers.

Owns the Jinja2 templates (``templates/``, autoescaped), the static CSS and JavaScript
shipped in the wheel (``static/``, served from a fixed allow-list, never a client path), the
server-side SVG charts, and the page endpoints collected in :mod:`plinth.ui.pages`. Sits
above :mod:`plinth.api` (it reuses its ``Endpoint``/``Call`` and JSON resources) and may
import the pillars and the ledger; nothing below imports it.
"""
