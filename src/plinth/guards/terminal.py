"""Text from records, made safe to print on a terminal.

Anyone who can write the ledger can put terminal escape sequences into a run's name, a param,
a tag, a model's description or an artifact path: ``ESC ] 2 ; title BEL`` retitles the window,
``ESC [ 2 J`` clears the screen, ``ESC ] 8`` makes a link, and a carriage return or newline can
paint a fake line (``status  finished``) over the real one. Before plinth prints such text for a
person, every control character (C0, DEL, C1), line break and bidirectional override is shown as
a visible escape instead::

    >>> printable("ok\\x1b[2Jdone")
    'ok\\\\x1b[2Jdone'

JSON output needs none of this: ``json.dumps`` already escapes control characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["printable", "printable_data"]

#: Control characters (C0 including tab and newline, DEL, C1), line and paragraph separators
#: and the bidirectional marks, embeddings, overrides and isolates ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could steer a terminal shown as ``\\xNN``/``\\uNNNN``."""
    return _UNSAFE.sub(_escape, text)


def printable_data(value: Any) -> Any:
    """``value`` with :func:`printable` applied to every string in it, keys included."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Mapping):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_data(v) for v in value]
    return value
