"""The Content-Security-Policy of every HTML page plinth writes or serves.

Reports are self-contained pages that may show text someone else wrote (column names,
suite and check names, category values). Besides escaping that text, every page carries
a strict policy, so that even a missed escape cannot run script or load anything::

    head = f'<head><meta charset="utf-8">{csp_meta()}<title>...</title>'
    headers = {"Content-Security-Policy": csp_policy()}

Nothing is allowed but inline styles and ``data:`` images; a page that needs a script
passes its exact text, and the policy allows that script alone, by its SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from html import escape

__all__ = ["CSP_HEADER", "POLICY", "csp_meta", "csp_policy", "script_hash"]

#: The policy of a page without scripts.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: The response header name that carries the policy over HTTP.
CSP_HEADER = "Content-Security-Policy"


def script_hash(script: str) -> str:
    """The CSP source (``'sha256-…'``) that allows exactly the inline script ``script``."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def csp_policy(scripts: Iterable[str] = ()) -> str:
    """The policy string; ``scripts`` are the exact texts of the page's inline scripts."""
    hashes = " ".join(script_hash(s) for s in scripts)
    return f"{POLICY}; script-src {hashes}" if hashes else POLICY


def csp_meta(scripts: Iterable[str] = ()) -> str:
    """The ``<meta http-equiv>`` tag of :func:`csp_policy`; put it first in ``<head>``."""
    policy = escape(csp_policy(scripts), quote=True)
    return f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
