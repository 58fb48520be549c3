"""The one grammar of record references: ``NAME``, ``NAME@N``, ``NAME@latest``, ``NAME@LABEL``.

Datasets, models, deployments, suites and monitors all name a version this way::

    flights            the latest version (the same as flights@latest)
    flights@3          version 3; flights@v3 is the same version
    flights@gold       the version the tag (or model alias) ``gold`` points at

A label (a dataset tag or a model alias) starts with a letter, holds letters, digits, '_',
'.' and '-', is at most 64 characters, and is neither ``latest`` nor ``v`` and a number, so
it can never be read as a version. Labels made before this rule (up to 255 characters, or
``Latest``) still resolve by exact lookup; only ``vN`` ones, which always read as versions,
do not. Core module: the standard library and :mod:`plinth.errors` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plinth.errors import UsageError

__all__ = [
    "GRAMMAR",
    "LABEL_MAX",
    "NAME_MAX",
    "Ref",
    "check_label",
    "check_name",
    "parse_ref",
    "parse_spec",
]

#: The grammar in one line, for hints.
GRAMMAR = "NAME, NAME@N (or NAME@vN), NAME@latest or NAME@LABEL"
NAME_MAX = 255
LABEL_MAX = 64
#: Labels created under the older, looser rule were at most this long; they still resolve.
_LOOKUP_MAX = 255

# Character classes spelled out, not \d or \w: those match non-ASCII digits and letters.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
_VERSION = re.compile(r"[vV]?([0-9]+)")
#: A version must fit the ledger's 64-bit integer columns.
_VERSION_MAX = 2**63 - 1
_LABEL_RULE = (
    f"a {{what}} starts with a letter and holds letters, digits, '_', '.' and '-' (at most "
    f"{LABEL_MAX}), and is not 'latest' nor 'v' and a number, which name versions"
)


@dataclass(frozen=True)
class Ref:
    """A parsed reference: a name and at most one of a version number and a label.

    ``str(ref)`` is the canonical text and parses back to an equal Ref.
    """

    name: str
    version: int | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        # Checked here too, so that every Ref prints as text that parses back to it.
        check_name(self.name, field="ref")
        if self.version is not None and self.label is not None:
            raise UsageError(
                f"a reference names a version or a label, not both ({self.version}, "
                f"{self.label!r:.80})",
                hint=f"write {GRAMMAR}",
                field="ref",
            )
        if self.version is not None and (
            isinstance(self.version, bool)
            or not isinstance(self.version, int)
            or not 1 <= self.version <= _VERSION_MAX
        ):
            raise UsageError(
                f"a version is a whole number from 1, got {self.version!r:.40}", field="ref"
            )
        if self.label is not None and _spec(self.label, lenient=True) != (None, self.label):
            raise UsageError(
                f"invalid label {self.label!r:.80}",
                hint=_LABEL_RULE.format(what="label"),
                field="ref",
            )

    @property
    def is_latest(self) -> bool:
        """True when it names the latest version (``NAME`` or ``NAME@latest``)."""
        return self.version is None and self.label is None

    @property
    def spec(self) -> int | str | None:
        """What a store resolves: the version number, the label, or None for the latest."""
        return self.version if self.version is not None else self.label

    def __str__(self) -> str:
        spec = self.spec
        return self.name if spec is None else f"{self.name}@{spec}"


def _invalid(what: str, text: object, why: str, example: str, field: str) -> UsageError:
    return UsageError(
        f"invalid {what} reference {text!r:.80}: {why}",
        hint=f"write {GRAMMAR}, e.g. {example}",
        field=field,
    )


def check_name(name: object, *, what: str = "record", field: str = "name") -> str:
    """``name`` if it can name a record: a letter or digit, then letters, digits, '_.-'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > NAME_MAX:
        raise UsageError(
            f"invalid {what} name {name!r:.80}",
            hint=f"use letters, digits, '_', '.' and '-', starting with a letter or digit "
            f"(at most {NAME_MAX}), e.g. flights or delays-gbm",
            field=field,
        )
    return name


def check_label(
    label: object, *, what: str = "tag", field: str = "tag", existing: bool = False
) -> str:
    """``label`` if a new tag or alias may be called so (the rule in the module docstring).

    With ``existing``, any label a reference can name passes: one made under the older rule
    can still be looked up, moved away from or deleted.
    """
    if existing and isinstance(label, str) and label and _spec(label, lenient=True)[1] == label:
        return label
    if (
        not isinstance(label, str)
        or not _LABEL.fullmatch(label)
        or len(label) > LABEL_MAX
        or label.lower() == "latest"
        or _VERSION.fullmatch(label)
    ):
        raise UsageError(
            f"invalid {what} {label!r:.80}",
            hint=_LABEL_RULE.format(what=what) + ", e.g. gold, champion or prod-v2",
            field=field,
        )
    return label


def _spec(text: str, *, lenient: bool = False) -> tuple[int | None, str | None]:
    """(version, label) from the text after '@'; (None, None) for ``latest``.

    ValueError saying why when it is neither; with ``lenient``, (None, None) instead.
    """
    if lenient:
        try:
            return _spec(text)
        except ValueError:
            return None, None
    if text == "latest":
        return None, None
    number = _VERSION.fullmatch(text)
    if number is not None:
        if len(number[1]) > 19 or not 1 <= int(number[1]) <= _VERSION_MAX:
            raise ValueError("versions start at 1 (and fit in 64 bits)")
        return int(number[1]), None
    if _LABEL.fullmatch(text) and len(text) <= _LOOKUP_MAX:
        return None, text
    raise ValueError(
        "after '@' comes a version number (3 or v3), latest, or a label (a letter, then "
        "letters, digits, '_', '.' and '-')"
    )


def parse_ref(text: str, *, what: str = "record", field: str = "ref") -> Ref:
    """The :class:`Ref` ``text`` names; UsageError naming the grammar when it is malformed.

    ``what`` words the message ("dataset", "model"); ``field`` is the error's field.
    """
    if not isinstance(text, str) or not text:
        raise _invalid(what, text, "it is empty or not text", "flights@3", field)
    name, at, spec = text.partition("@")
    if not _NAME.fullmatch(name) or len(name) > NAME_MAX:
        raise _invalid(
            what,
            text,
            "the name starts with a letter or digit and holds letters, digits, '_', '.' and '-'",
            "flights@3",
            field,
        )
    if not at:
        return Ref(name)
    if not spec:
        raise _invalid(
            what,
            text,
            "it names no version after '@'",
            f"{name}@3, {name}@latest or just {name} for the latest",
            field,
        )
    if "@" in spec:
        raise _invalid(what, text, "it has more than one '@'", f"{name}@3", field)
    try:
        version, label = _spec(spec)
    except ValueError as exc:
        raise _invalid(what, text, str(exc), f"{name}@3 or {name}@gold", field) from None
    return Ref(name, version, label)


def parse_spec(
    spec: str | int | None, *, what: str = "record", field: str = "version"
) -> int | str | None:
    """A version given on its own (``3``, ``"3"``, ``"v3"``, ``"latest"``, a label, None)
    as a number, a label, or None for the latest version."""
    if spec is None:
        return None
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        raise UsageError(
            f"invalid {what} version {spec!r:.80}",
            hint="name a version by number (3 or v3), by label (e.g. gold) or as latest",
            field=field,
        )
    if isinstance(spec, int):
        if not 1 <= spec <= _VERSION_MAX:
            raise UsageError(f"{what} versions start at 1, got {str(spec)[:40]}", field=field)
        return spec
    if not spec:
        raise UsageError(
            f"invalid {what} version '' (empty)",
            hint="name a version by number (3 or v3), by label (e.g. gold) or as latest",
            field=field,
        )
    try:
        version, label = _spec(spec)
    except ValueError as exc:
        raise UsageError(
            f"invalid {what} version {spec!r:.80}: {exc}",
            hint="name a version by number (3 or v3), by label (e.g. gold) or as latest",
            field=field,
        ) from None
    return version if version is not None else label
